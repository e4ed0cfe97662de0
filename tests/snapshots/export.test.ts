/**
 * Snapshot export: the usable votes up to a cut-off become train / validation / test Parquet
 * files in Pick-a-Pic v2's columns, read back here by pyarrow and by `datasets` (the readers
 * users have), with counts, checksums, idempotency and the failure rules (nothing half-written).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../functions/src/config.js";
import { datasetSnapshots } from "../../functions/src/db/schema.js";
import { splitOfPrompt } from "../../functions/src/domain/snapshotRows.js";
import { createSnapshot, NoUsableVotesError } from "../../functions/src/snapshots/export.js";
import { type Harness, openHarness } from "../api/votingHarness.js";
import { type SeededVote, seedVotes } from "./seedVotes.js";

const python = join(repoRoot, ".venv", "bin", "python");

/** What pyarrow and datasets see in the stored files (an independent reader of our bytes). */
const READER = `
import json, sys, hashlib, pyarrow.parquet as pq
from datasets import load_dataset
root = sys.argv[1]
out = {"files": {}}
for split in ["train", "validation", "test"]:
    path = f"{root}/{split}.parquet"
    f = pq.ParquetFile(path)
    t = f.read()
    out["files"][split] = {
        "rows": t.num_rows,
        "row_groups": f.metadata.num_row_groups,
        "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
        "schema": {n: str(t.schema.field(n).type) for n in t.schema.names},
        "rows_by_vote": {r["vote_id"]: {k: (hashlib.sha256(v).hexdigest() if isinstance(v, bytes) else v)
                         for k, v in r.items() if k not in ("created_at",)} for r in t.to_pylist()},
    }
# datasets refuses a split of 0 rows ("corresponds to no data"): load the splits that have rows
ds = load_dataset("parquet", data_files={s: f"{root}/{s}.parquet" for s in ["train", "validation", "test"] if out["files"][s]["rows"] > 0})
out["datasets"] = {s: {"rows": ds[s].num_rows, "columns": ds[s].column_names} for s in ds}
# what the diffusers DPO example keeps: label_0 in (0, 1), then jpg_0/jpg_1 by label
train = ds["train"].filter(lambda r: r["label_0"] in (0, 1)) if "train" in ds else []
out["dpo_rows"] = len(train)
print(json.dumps(out))
`;

interface ReadBack {
  files: Record<
    string,
    {
      rows: number;
      row_groups: number;
      sha256: string;
      schema: Record<string, string>;
      rows_by_vote: Record<string, Record<string, unknown>>;
    }
  >;
  datasets: Record<string, { rows: number; columns: string[] }>;
  dpo_rows: number;
}

function readBack(dir: string, snapshotId: string): ReadBack {
  const script = join(dir, "read.py");
  writeFileSync(script, READER);
  return JSON.parse(
    execFileSync(python, [script, join(dir, "blobs", "snapshots", snapshotId)], {
      encoding: "utf8",
      env: { ...process.env, HF_DATASETS_OFFLINE: "1", HF_HOME: join(dir, "hf") },
      timeout: 120_000,
    }),
  ) as ReadBack;
}

describe("snapshot export (PGlite, fs blobs)", () => {
  let h: Harness;
  let dir: string;
  let seeded: SeededVote[];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "prefloop-snap-"));
    h = await openHarness("pglite", { BLOB_DIR: join(dir, "blobs") });
    seeded = await seedVotes(
      h.deps,
      [
        { choice: "left", leftIs: "a" }, // image_0 wins
        { choice: "left", leftIs: "b" }, // image_1 wins
        { choice: "right", leftIs: "a" }, // image_1 wins
        { choice: "right", leftIs: "b" }, // image_0 wins
        { choice: "tie" },
        { choice: "both_bad", leftIs: "b" },
        { choice: "left", flags: ["no_decision_time"] }, // usable
        { choice: "left", flags: ["too_fast"] }, // excluded: too_fast
        { choice: "right", gold: true }, // excluded: gold_pair
        ...Array.from({ length: 11 }, (_, i) => ({ choice: i % 2 ? ("left" as const) : ("right" as const) })),
      ],
      { voterCount: 4 },
    );
  }, 120_000);
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes three split files that pyarrow and datasets read, with Pick-a-Pic v2's types and labels", async () => {
    const cutoff = new Date();
    const { snapshot, created } = await createSnapshot(
      h.deps,
      { cutoff },
      { rowGroupLimits: { maxRows: 3, maxBytes: 1e9 } },
    );
    expect(created).toBe(true);
    expect(snapshot.rowCount).toBe(18);
    expect(snapshot.counts).toMatchObject({
      rows: 18,
      ties: 1,
      bothBad: 1,
      wins: 16,
      voters: 4,
      prompts: 18,
      excluded: { too_fast: 1, gold_pair: 1 },
    });
    expect(snapshot.files.map((f) => f.split)).toEqual(["train", "validation", "test"]);
    for (const f of snapshot.files) {
      const bytes = await h.deps.blobs.get(f.key);
      expect(bytes?.length).toBe(f.bytes);
      expect(
        createHash("sha256")
          .update(bytes ?? new Uint8Array())
          .digest("hex"),
      ).toBe(f.sha256);
    }

    const back = readBack(dir, snapshot.id);
    const total = Object.values(back.files).reduce((n, f) => n + f.rows, 0);
    expect(total).toBe(18);
    for (const f of snapshot.files) expect(back.files[f.split]?.rows).toBe(f.rows);
    const schema = back.files.train?.schema ?? {};
    expect(schema).toMatchObject({
      are_different: "bool",
      best_image_uid: "string",
      caption: "string",
      created_at: "timestamp[ns]",
      has_label: "bool",
      image_0_uid: "string",
      image_1_uid: "string",
      image_0_url: "string",
      image_1_url: "string",
      jpg_0: "binary",
      jpg_1: "binary",
      label_0: "double",
      label_1: "double",
      model_0: "string",
      model_1: "string",
      ranking_id: "int64",
      user_id: "int64",
      num_example_per_prompt: "int64",
      split: "string",
      vote: "string",
      left_shown: "string",
    });
    // An empty split still carries the whole schema.
    for (const f of Object.values(back.files)) expect(f.schema).toEqual(schema);
    expect(back.datasets.train?.columns).toEqual(
      expect.arrayContaining(["jpg_0", "jpg_1", "label_0", "caption"]),
    );
    expect(back.files.train?.row_groups).toBeGreaterThan(1);

    // Each vote's row, against the plan: labels in image_0 / image_1 terms through the side shown left.
    const expected: Record<string, [number, number, boolean, string]> = {
      "left:a": [1, 0, true, "image_0"],
      "left:b": [0, 1, true, "image_1"],
      "right:a": [0, 1, true, "image_1"],
      "right:b": [1, 0, true, "image_0"],
      "tie:a": [0.5, 0.5, true, "tie"],
      "both_bad:b": [0.5, 0.5, false, "both_bad"],
    };
    const allRows = Object.assign({}, ...Object.values(back.files).map((f) => f.rows_by_vote)) as Record<
      string,
      Record<string, unknown>
    >;
    let dpoRowsInTrain = 0;
    for (const v of seeded) {
      const row = allRows[v.voteId];
      if (v.flags.includes("too_fast") || v === seeded[8]) {
        expect(row).toBeUndefined();
        continue;
      }
      expect(row).toBeDefined();
      const want = expected[`${v.choice}:${v.leftIs}`];
      if (want) {
        expect([row?.label_0, row?.label_1, row?.has_label, row?.vote]).toEqual(want);
        expect(row?.left_shown).toBe(v.leftIs === "a" ? "image_0" : "image_1");
      }
      expect(row?.split).toBe(splitOfPrompt(String(row?.caption)));
      expect(row?.pair_id).toBe(v.pairId);
      const [gen] = await h.deps.db.orm
        .execute<{ a: string; key: string }>(
          sql`select g.id as a, g.blob_key as key from pairs p join generations g on g.id = p.generation_a_id where p.id = ${v.pairId}`,
        )
        .then((r) => (r as unknown as { rows: { a: string; key: string }[] }).rows);
      expect(row?.image_0_uid).toBe(gen?.a);
      const png = await h.deps.blobs.get(gen?.key ?? "");
      expect(row?.jpg_0).toBe(
        createHash("sha256")
          .update(png ?? new Uint8Array())
          .digest("hex"),
      );
      if (row?.split === "train" && (row.label_0 === 0 || row.label_0 === 1)) dpoRowsInTrain++;
    }
    expect(back.dpo_rows).toBe(dpoRowsInTrain);
  }, 180_000);

  it("writes an empty split as an empty file with the whole schema", async () => {
    const one = seeded[0] as SeededVote;
    const { snapshot } = await createSnapshot(h.deps, {
      cutoff: one.createdAt,
      since: new Date(one.createdAt.getTime() - 1),
    });
    expect(snapshot.rowCount).toBe(1);
    expect(snapshot.files.map((f) => f.rows).sort()).toEqual([0, 0, 1]);
    const back = readBack(dir, snapshot.id);
    const schemas = Object.values(back.files).map((f) => JSON.stringify(f.schema));
    expect(new Set(schemas).size).toBe(1);
    expect(
      Object.values(back.files)
        .map((f) => f.rows)
        .sort(),
    ).toEqual([0, 0, 1]);
  }, 120_000);

  it("gives the same snapshot for the same cut-off", async () => {
    const cutoff = new Date(Date.now() - 1000);
    const first = await createSnapshot(h.deps, { cutoff });
    const again = await createSnapshot(h.deps, { cutoff });
    expect(again.created).toBe(false);
    expect(again.snapshot.id).toBe(first.snapshot.id);
    expect(again.snapshot.files).toEqual(first.snapshot.files);
  });

  it("refuses a window without usable votes and writes nothing", async () => {
    const cutoff = new Date(Date.now() - 365 * 86_400_000);
    await expect(createSnapshot(h.deps, { cutoff })).rejects.toBeInstanceOf(NoUsableVotesError);
    const rows = await h.deps.db.orm
      .select()
      .from(datasetSnapshots)
      .where(eq(datasetSnapshots.cutoff, cutoff));
    expect(rows).toHaveLength(0);
  });

  it("leaves no row and no file when storing a file fails", async () => {
    const cutoff = new Date(Date.now() - 2000);
    const blobs = h.deps.blobs;
    let stores = 0;
    const failing = {
      ...blobs,
      putFile: async (key: string, path: string) => {
        if (++stores === 2) throw new Error("disk full");
        await blobs.putFile(key, path);
      },
    };
    await expect(createSnapshot({ ...h.deps, blobs: failing }, { cutoff })).rejects.toThrow(/disk full/);
    const all = await h.deps.db.orm.select().from(datasetSnapshots);
    expect(all.some((s) => s.cutoff.getTime() === cutoff.getTime())).toBe(false);
    const listed = await blobs.list("snapshots/");
    const kept = new Set(all.flatMap((s) => s.files.map((f) => f.key)));
    expect(listed.filter((k) => !kept.has(k))).toEqual([]);
  });
});
