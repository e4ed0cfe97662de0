/**
 * The adapter registry on PGlite and on the real PostgreSQL server: registration checks an
 * adapter against its base model (hash, keys, shapes, dtypes, rank) and refuses a mismatch with
 * its reason; lineage walks parents to the base; promotion keeps one champion per base model,
 * even when two promotions race; retire is idempotent.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  currentChampion,
  lineage,
  listAdapters,
  promoteAdapter,
  retireAdapter,
} from "../../functions/src/adapters/registry.js";
import { ADAPTER_MAX_RANK } from "../../functions/src/adapters/validate.js";
import { repoRoot } from "../../functions/src/config.js";
import { adapters, baseModels } from "../../functions/src/db/schema.js";
import { serializeSafetensors } from "../../functions/src/inference/safetensors.js";
import { modelFolderSha256 } from "../../functions/src/local/baseModel.js";
import { blobUri } from "../../functions/src/platform/blob/uri.js";
import { registerTrainingResult } from "../../functions/src/training/registerAdapter.js";
import { type Harness, openHarness } from "../api/votingHarness.js";

const micro = join(repoRoot, "tests/fixtures/inference/micro-sd");
const goodWeights = new Uint8Array(readFileSync(join(micro, "adapter_a/pytorch_lora_weights.safetensors")));
const target = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";

const manifest = (over: Record<string, unknown> = {}) => ({
  format: "prefloop.adapter/v1",
  baseModelId: "micro",
  baseModelSha256: "f".repeat(64),
  objective: "dpo",
  space: "latent",
  rank: 4,
  alpha: 8,
  ...over,
});

const lora = (rank: number, inF = 8, outF = 8, key = target) =>
  serializeSafetensors({
    [`${key}.lora_A.weight`]: { shape: [rank, inF], data: new Float32Array(rank * inF).fill(0.01) },
    [`${key}.lora_B.weight`]: { shape: [outF, rank], data: new Float32Array(outF * rank).fill(0.01) },
  });

describe.each(["pglite", "postgres"] as const)("adapter registry (%s)", (db) => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness(db);
    await h.deps.db.orm.insert(baseModels).values({
      id: "micro",
      name: "micro",
      family: "stable-diffusion",
      sha256: "f".repeat(64),
      onnxUri: join(micro, "onnx"),
      width: 16,
      height: 16,
    });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  const publish = async (id: string, m: object, weights: Uint8Array = goodWeights) => {
    await h.deps.blobs.put(`adapters/${id}/pytorch_lora_weights.safetensors`, weights);
    await h.deps.blobs.put(`adapters/${id}/manifest.json`, new TextEncoder().encode(JSON.stringify(m)));
    return registerTrainingResult(h.deps, {
      version: 1,
      id: `${id}.result`,
      createdAt: new Date().toISOString(),
      type: "training_result",
      payload: {
        trainingJobId: `job-${id}`,
        adapterId: id,
        status: "succeeded",
        adapterUri: blobUri(h.deps.config.blob, `adapters/${id}/`),
        metrics: { heldout_implicit_acc: 0.6 },
        error: null,
      },
    });
  };

  it("registers a fitting adapter with its parent, once", async () => {
    expect(await publish("root", manifest())).toMatchObject({ outcome: "registered", parentAdapterId: null });
    expect(await publish("child", manifest({ parentAdapterId: "root" }))).toMatchObject({
      outcome: "registered",
      parentAdapterId: "root",
    });
    expect((await publish("child", manifest({ parentAdapterId: "root" }))).outcome).toBe(
      "already-registered",
    );
    const [row] = await h.deps.db.orm.select().from(adapters).where(eq(adapters.id, "child"));
    expect(row).toMatchObject({ parentAdapterId: "root", status: "candidate", rank: 4, objective: "dpo" });
  });

  it.each([
    [
      "another base model",
      manifest({ baseModelId: "sd15" }),
      goodWeights,
      /base model sd15 is not registered here/,
    ],
    [
      "another base hash",
      manifest({ baseModelSha256: "0".repeat(64) }),
      goodWeights,
      /trained on a base model with hash 0000/,
    ],
    ["no base hash", manifest({ baseModelSha256: undefined }), goodWeights, /no baseModelSha256/],
    ["a shape that does not fit", manifest({ rank: 2 }), lora(2, 9), /lora_A.weight has shape \[2,9\]/],
    [
      "a key the model lacks",
      manifest({ rank: 2 }),
      lora(2, 8, 8, "unet.mid_block.nothing.to_q"),
      /not a LoRA target/,
    ],
    [
      "a rank over the limit",
      manifest({ rank: ADAPTER_MAX_RANK + 1 }),
      lora(ADAPTER_MAX_RANK + 1),
      /above the limit/,
    ],
    [
      "a rank unlike its manifest's",
      manifest({ rank: 8 }),
      lora(2),
      /manifest says rank 8, its weights have rank 2/,
    ],
    [
      "bytes that are not safetensors",
      manifest(),
      new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]),
      /adapter bad-bytes-that-are-not-safetensors: safetensors/,
    ],
  ])("refuses an adapter with %s, naming why", async (_what, m, weights, reason) => {
    const id = `bad-${_what.replaceAll(" ", "-").replaceAll("'", "")}`;
    await h.deps.db.orm.delete(adapters).where(eq(adapters.id, id));
    const out = await publish(id, m, weights);
    expect(out.outcome).toBe("refused");
    expect(out.outcome === "refused" && out.reason).toMatch(reason);
    expect(await h.deps.db.orm.select().from(adapters).where(eq(adapters.id, id))).toEqual([]);
  });

  it("walks the lineage to the base model", async () => {
    await publish("grandchild", manifest({ parentAdapterId: "child" }));
    const [gc] = await h.deps.db.orm.select().from(adapters).where(eq(adapters.id, "grandchild"));
    const l = await lineage(h.deps.db, gc as typeof adapters.$inferSelect);
    expect(l.chain.map((s) => s.adapterId)).toEqual(["grandchild", "child", "root"]);
    expect(l).toMatchObject({ complete: true, baseModelId: "micro" });
    await publish("orphan", manifest({ parentAdapterId: "never-registered" }));
    const [o] = await h.deps.db.orm.select().from(adapters).where(eq(adapters.id, "orphan"));
    expect(await lineage(h.deps.db, o as typeof adapters.$inferSelect)).toMatchObject({
      complete: false,
      missingParentId: "never-registered",
    });
  });

  it("promotes one champion per base model, retiring the previous one; idempotent; a race ends with one", async () => {
    expect(await currentChampion(h.deps.db, "micro")).toBeNull();
    const first = await promoteAdapter(h.deps.db, "root", { actor: "test", reason: "first" });
    expect(first).toMatchObject({ changed: true, previousChampionId: null });
    expect(first.adapter.promotedAt).toBeInstanceOf(Date);
    expect((await promoteAdapter(h.deps.db, "root", { actor: "test", reason: "again" })).changed).toBe(false);
    const second = await promoteAdapter(h.deps.db, "child", { actor: "test", reason: "better" });
    expect(second.previousChampionId).toBe("root");
    const [root] = await h.deps.db.orm.select().from(adapters).where(eq(adapters.id, "root"));
    expect(root?.status).toBe("retired");
    expect(root?.retiredAt).toBeInstanceOf(Date);
    expect((await currentChampion(h.deps.db, "micro"))?.id).toBe("child");

    await Promise.all([
      promoteAdapter(h.deps.db, "grandchild", { actor: "a", reason: "race" }),
      promoteAdapter(h.deps.db, "orphan", { actor: "b", reason: "race" }),
    ]);
    const champions = await listAdapters(h.deps.db, { baseModelId: "micro", status: "champion", limit: 10 });
    expect(champions).toHaveLength(1);
    expect(["grandchild", "orphan"]).toContain(champions[0]?.id);
  });

  it("retires idempotently; retiring the champion leaves the base model", async () => {
    const champ = await currentChampion(h.deps.db, "micro");
    expect((await retireAdapter(h.deps.db, champ?.id ?? "", { actor: "t", reason: "r" })).changed).toBe(true);
    expect((await retireAdapter(h.deps.db, champ?.id ?? "", { actor: "t", reason: "r" })).changed).toBe(
      false,
    );
    expect(await currentChampion(h.deps.db, "micro")).toBeNull();
  });
});

describe("the base model's hash", () => {
  it("is the worker's content hash of the trained-on folder (model_sha256)", () => {
    const dir = join(repoRoot, "tests/fixtures/inference/micro-sd/onnx");
    const python = execFileSync(
      join(repoRoot, ".venv/bin/python"),
      [
        "-c",
        "import sys; sys.path.insert(0, sys.argv[1]); from prefloop_worker.train.model import model_sha256; print(model_sha256(sys.argv[2]))",
        join(repoRoot, "gpu-worker/src"),
        dir,
      ],
      { encoding: "utf8", timeout: 120_000 },
    ).trim();
    expect(modelFolderSha256(dir)).toBe(python);
  }, 120_000);
});
