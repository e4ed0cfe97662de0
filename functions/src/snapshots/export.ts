/**
 * Freezing the usable votes up to a cut-off into a dataset snapshot, streaming: votes are read
 * from the database a page at a time (keyset order on created_at, id), each vote's two images
 * from the blob store, and rows go into the split's Parquet file one row group at a time, so
 * memory stays flat however many votes there are.
 *
 * Files first, row last: the three files (`train`, `validation`, `test`; an empty split is an
 * empty file with the schema) are written to a local folder, then stored under
 * `snapshots/<id>/`, and only then is the `dataset_snapshots` row inserted. A failed export
 * removes what it stored and leaves no row. The id is a hash of the cut-off and filters, so the
 * same request gives the same snapshot (and two at once converge on one row).
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq, sql } from "drizzle-orm";
import { datasetSnapshots, type SnapshotFile } from "../db/schema.js";
import type { Deps } from "../deps.js";
import {
  bestImageUid,
  labelsOf,
  modelName,
  SNAPSHOT_SPLITS,
  type SnapshotSplit,
  sameBytes,
  splitOfPrompt,
  stableInt64,
  voteInImageTerms,
} from "../domain/snapshotRows.js";
import { blobUri } from "../platform/blob/uri.js";
import { rows } from "../platform/db/rows.js";
import { exclusionReason, usableVoteCondition } from "../voting/usableVotes.js";
import { type RowGroupLimits, SnapshotFileWriter } from "./parquetFile.js";

export type Snapshot = typeof datasetSnapshots.$inferSelect;

export interface SnapshotRequest {
  /** Votes created at or before this instant. */
  cutoff: Date;
  /** Only votes created after this instant (null: from the first vote). */
  since?: Date | null;
}

/** There is nothing to freeze: the API answers 409, nothing is written. */
export class NoUsableVotesError extends Error {
  override name = "NoUsableVotesError";
}

export const SNAPSHOT_FORMAT = "pickapic-v2-parquet";
const PAGE = 500;

export function snapshotDedupeKey(req: SnapshotRequest): string {
  return `usable-votes/v1;cutoff=${req.cutoff.toISOString()};since=${req.since?.toISOString() ?? "-"}`;
}

export function snapshotIdFor(req: SnapshotRequest): string {
  return `snap_${createHash("sha256").update(snapshotDedupeKey(req)).digest("hex").slice(0, 20)}`;
}

type Scope = { cutoff: string; since: string | null };

const inScope = (s: Scope) =>
  s.since
    ? sql`v.created_at <= ${s.cutoff}::timestamptz and v.created_at > ${s.since}::timestamptz`
    : sql`v.created_at <= ${s.cutoff}::timestamptz`;

/** Usable votes in the window (what a snapshot of it would hold). */
export async function countUsableVotes(
  db: Deps["db"],
  window: { cutoff: Date; since?: Date | null },
): Promise<number> {
  const scope = { cutoff: window.cutoff.toISOString(), since: window.since?.toISOString() ?? null };
  const [r] = await rows<{ n: number }>(
    db.orm,
    sql`select count(*)::int as n from votes v join pairs p on p.id = v.pair_id
        join voters vr on vr.id = v.voter_id where ${inScope(scope)} and ${usableVoteCondition()}`,
  );
  return r?.n ?? 0;
}

interface VoteRow {
  vote_id: string;
  voter_id: string;
  choice: string;
  decision_ms: number | null;
  qc_flags: string[];
  created_us: string;
  created_text: string;
  pair_id: string;
  pair_kind: string;
  left_is: "a" | "b" | null;
  experiment_id: string | null;
  arm_a: string | null;
  arm_b: string | null;
  prompt_id: string;
  caption: string;
  a_id: string;
  a_key: string | null;
  a_seed: string;
  a_sampler: string;
  a_steps: number;
  a_guidance: number;
  a_adapter: string | null;
  a_base: string;
  b_id: string;
  b_key: string | null;
  b_seed: string;
  b_sampler: string;
  b_steps: number;
  b_guidance: number;
  b_adapter: string | null;
  b_base: string;
}

async function* usableVotePages(db: Deps["db"], scope: Scope): AsyncGenerator<VoteRow[]> {
  let after: { at: string; id: string } | null = null;
  for (;;) {
    const keyset = after ? sql`and (v.created_at, v.id) > (${after.at}::timestamptz, ${after.id})` : sql``;
    const page: VoteRow[] = await rows<VoteRow>(
      db.orm,
      sql`select v.id as vote_id, v.voter_id, v.choice, v.decision_ms, v.qc_flags,
            floor(extract(epoch from v.created_at) * 1000000)::bigint::text as created_us,
            v.created_at::text as created_text,
            p.id as pair_id, p.kind as pair_kind, p.left_is, p.experiment_id, p.arm_a, p.arm_b,
            pr.id as prompt_id, pr.text as caption,
            ga.id as a_id, ga.blob_key as a_key, ga.seed as a_seed, ga.sampler as a_sampler,
            ga.steps as a_steps, ga.guidance as a_guidance, ga.adapter_id as a_adapter, ga.base_model_id as a_base,
            gb.id as b_id, gb.blob_key as b_key, gb.seed as b_seed, gb.sampler as b_sampler,
            gb.steps as b_steps, gb.guidance as b_guidance, gb.adapter_id as b_adapter, gb.base_model_id as b_base
          from votes v
          join pairs p on p.id = v.pair_id
          join voters vr on vr.id = v.voter_id
          join prompts pr on pr.id = p.prompt_id
          join generations ga on ga.id = p.generation_a_id
          join generations gb on gb.id = p.generation_b_id
          where ${inScope(scope)} and ${usableVoteCondition()} ${keyset}
          order by v.created_at, v.id
          limit ${PAGE}`,
    );
    if (page.length === 0) return;
    yield page;
    const last = page[page.length - 1] as VoteRow;
    after = { at: last.created_text, id: last.vote_id };
    if (page.length < PAGE) return;
  }
}

/** Votes in the window that are not usable, by reason (the one definition in usableVotes.ts). */
async function excludedByReason(db: Deps["db"], scope: Scope): Promise<Record<string, number>> {
  const groups = await rows<{
    kind: string;
    is_gold: boolean;
    excluded: boolean;
    flags: string[];
    n: number;
  }>(
    db.orm,
    sql`select p.kind, p.is_gold, vr.excluded, v.qc_flags as flags, count(*)::int as n
        from votes v join pairs p on p.id = v.pair_id join voters vr on vr.id = v.voter_id
        where ${inScope(scope)} and not ${usableVoteCondition()}
        group by p.kind, p.is_gold, vr.excluded, v.qc_flags`,
  );
  const out: Record<string, number> = {};
  for (const g of groups) {
    const reason =
      exclusionReason({ pairKind: g.kind, isGold: g.is_gold, voterExcluded: g.excluded, qcFlags: g.flags }) ??
      "other";
    out[reason] = (out[reason] ?? 0) + g.n;
  }
  return out;
}

async function promptTotals(
  db: Deps["db"],
  scope: Scope,
): Promise<{ perPrompt: Map<string, number>; voters: number }> {
  const perPrompt = new Map<string, number>();
  const counts = await rows<{ prompt_id: string; n: number }>(
    db.orm,
    sql`select p.prompt_id, count(*)::int as n
        from votes v join pairs p on p.id = v.pair_id join voters vr on vr.id = v.voter_id
        where ${inScope(scope)} and ${usableVoteCondition()} group by p.prompt_id`,
  );
  for (const c of counts) perPrompt.set(c.prompt_id, c.n);
  const [v] = await rows<{ n: number }>(
    db.orm,
    sql`select count(distinct v.voter_id)::int as n
        from votes v join pairs p on p.id = v.pair_id join voters vr on vr.id = v.voter_id
        where ${inScope(scope)} and ${usableVoteCondition()}`,
  );
  return { perPrompt, voters: v?.n ?? 0 };
}

const toBigInt = (s: string): bigint | null => (/^\d+$/.test(s) ? BigInt(s) : null);

export interface ExportOptions {
  rowGroupLimits?: RowGroupLimits;
  /** Where the files are written before they are stored (default: the OS temp folder). */
  workDir?: string;
}

/**
 * The snapshot of the usable votes in the window: the stored one when it exists, else a new
 * export. Throws NoUsableVotesError (nothing written) when the window holds no usable vote.
 */
export async function createSnapshot(
  deps: Pick<Deps, "db" | "blobs" | "config" | "log">,
  req: SnapshotRequest,
  opts: ExportOptions = {},
): Promise<{ snapshot: Snapshot; created: boolean }> {
  const id = snapshotIdFor(req);
  const existing = await deps.db.orm.select().from(datasetSnapshots).where(eq(datasetSnapshots.id, id));
  if (existing[0]) return { snapshot: existing[0], created: false };

  const scope: Scope = { cutoff: req.cutoff.toISOString(), since: req.since?.toISOString() ?? null };
  const { perPrompt, voters } = await promptTotals(deps.db, scope);
  if (perPrompt.size === 0) {
    throw new NoUsableVotesError(
      `There are no usable votes ${scope.since ? `after ${scope.since} and ` : ""}up to ${scope.cutoff}.`,
    );
  }
  const prefix = `snapshots/${id}/`;
  const dir = await mkdtemp(join(opts.workDir ?? tmpdir(), "prefloop-snapshot-"));
  const stored: string[] = [];
  try {
    const writers = Object.fromEntries(
      SNAPSHOT_SPLITS.map((s) => [s, new SnapshotFileWriter(join(dir, `${s}.parquet`), opts.rowGroupLimits)]),
    ) as Record<SnapshotSplit, SnapshotFileWriter>;
    const tally = { rows: 0, wins: 0, ties: 0, bothBad: 0, imageMissing: 0 };
    for await (const page of usableVotePages(deps.db, scope)) {
      for (const v of page) {
        const [jpg0, jpg1] = await Promise.all([
          v.a_key ? deps.blobs.get(v.a_key) : null,
          v.b_key ? deps.blobs.get(v.b_key) : null,
        ]);
        if (!jpg0 || !jpg1 || !v.a_key || !v.b_key) {
          tally.imageMissing++;
          continue;
        }
        const vote = voteInImageTerms(v.choice, v.left_is ?? "a");
        const split = splitOfPrompt(v.caption);
        await writers[split].add({
          are_different: !sameBytes(jpg0, jpg1),
          best_image_uid: bestImageUid(vote, v.a_id, v.b_id),
          caption: v.caption,
          created_at: BigInt(v.created_us) * 1000n,
          ...labelsOf(vote),
          image_0_uid: v.a_id,
          image_1_uid: v.b_id,
          image_0_url: blobUri(deps.config.blob, v.a_key),
          image_1_url: blobUri(deps.config.blob, v.b_key),
          jpg_0: jpg0,
          jpg_1: jpg1,
          model_0: modelName(v.a_base, v.a_adapter),
          model_1: modelName(v.b_base, v.b_adapter),
          ranking_id: stableInt64(v.vote_id),
          user_id: stableInt64(v.voter_id),
          num_example_per_prompt: BigInt(perPrompt.get(v.prompt_id) ?? 1),
          split,
          vote,
          left_shown: (v.left_is ?? "a") === "a" ? "image_0" : "image_1",
          vote_id: v.vote_id,
          voter_id: v.voter_id,
          pair_id: v.pair_id,
          pair_kind: v.pair_kind,
          prompt_id: v.prompt_id,
          base_model_id: v.a_base,
          decision_ms: v.decision_ms === null ? null : BigInt(v.decision_ms),
          seed_0: toBigInt(v.a_seed),
          seed_1: toBigInt(v.b_seed),
          sampler_0: v.a_sampler,
          sampler_1: v.b_sampler,
          steps_0: BigInt(v.a_steps),
          steps_1: BigInt(v.b_steps),
          guidance_0: Number(v.a_guidance),
          guidance_1: Number(v.b_guidance),
          adapter_0: v.a_adapter,
          adapter_1: v.b_adapter,
          experiment_id: v.experiment_id,
          arm_0: v.arm_a,
          arm_1: v.arm_b,
          vote_qc_flags: (v.qc_flags ?? []).join(","),
        });
        tally.rows++;
        if (vote === "tie") tally.ties++;
        else if (vote === "both_bad") tally.bothBad++;
        else tally.wins++;
      }
    }
    if (tally.rows === 0) {
      throw new NoUsableVotesError("The usable votes in this window have no stored images.");
    }
    const files: SnapshotFile[] = [];
    for (const split of SNAPSHOT_SPLITS) {
      const written = await writers[split].finish();
      const key = `${prefix}${split}.parquet`;
      await deps.blobs.putFile(key, written.path, { contentType: "application/vnd.apache.parquet" });
      stored.push(key);
      files.push({ split, key, rows: written.rows, bytes: written.bytes, sha256: written.sha256 });
    }
    const excluded = await excludedByReason(deps.db, scope);
    if (tally.imageMissing > 0) excluded.image_missing = tally.imageMissing;
    const counts = {
      rows: tally.rows,
      wins: tally.wins,
      ties: tally.ties,
      bothBad: tally.bothBad,
      voters,
      prompts: perPrompt.size,
      excluded,
      splits: Object.fromEntries(files.map((f) => [f.split, f.rows])),
    };
    const inserted = await deps.db.orm
      .insert(datasetSnapshots)
      .values({
        id,
        blobPrefix: prefix,
        format: SNAPSHOT_FORMAT,
        cutoff: req.cutoff,
        since: req.since ?? null,
        dedupeKey: snapshotDedupeKey(req),
        rowCount: tally.rows,
        counts,
        files,
        filters: {
          usable: "usableVoteCondition",
          split: "sha256(caption): train 0.8, validation 0.1, test 0.1",
        },
      })
      .onConflictDoNothing({ target: datasetSnapshots.id })
      .returning();
    if (inserted[0]) {
      deps.log.info("snapshot exported", { snapshotId: id, rows: tally.rows });
      return { snapshot: inserted[0], created: true };
    }
    // Another export of the same window finished first; its files are the same bytes.
    const [row] = await deps.db.orm.select().from(datasetSnapshots).where(eq(datasetSnapshots.id, id));
    if (!row) throw new Error(`snapshot ${id} vanished during export`);
    return { snapshot: row, created: false };
  } catch (err) {
    const [row] = await deps.db.orm
      .select({ id: datasetSnapshots.id })
      .from(datasetSnapshots)
      .where(eq(datasetSnapshots.id, id));
    if (!row) for (const key of stored) await deps.blobs.delete(key).catch(() => {});
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
