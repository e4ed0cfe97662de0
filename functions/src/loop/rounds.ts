/**
 * Loop rounds: one turn of the loop for a base model: a snapshot of the usable votes, one
 * training run per configured challenger (several = a tournament), then the experiment that
 * judges them (the experiments service picks up rounds in `experimenting` with no experiment).
 *
 * A round starts only when the loop is on, the base model has no active round and no running
 * experiment, and enough usable votes arrived since the last round's snapshot (the champion's,
 * in the usual case; all votes while there has been no round). Two ticks at once start one
 * round: the round row is inserted first, in its own transaction, and the unique index on the
 * active round of a base model makes the loser's insert fail; the loser does nothing.
 */
import { randomUUID } from "node:crypto";
import { and, count, desc, eq, inArray, isNotNull, sql } from "drizzle-orm";
import { currentChampion } from "../adapters/registry.js";
import {
  adapters,
  baseModels,
  datasetSnapshots,
  experiments,
  loopRounds,
  trainingRuns,
} from "../db/schema.js";
import type { Deps } from "../deps.js";
import { pgCode } from "../platform/db/rows.js";
import { countUsableVotes, createSnapshot, NoUsableVotesError } from "../snapshots/export.js";
import { insertRuns, planRun, sendJobs } from "../training/runs.js";

export type LoopRound = typeof loopRounds.$inferSelect;
type LoopDeps = Pick<Deps, "db" | "blobs" | "queue" | "config" | "log">;

/** A round in `training` with no run after this long was cut short (its export never finished). */
const STALE_ROUND_MS = 60 * 60 * 1000;

export type RoundDecision =
  | { start: true; baseModelId: string; since: Date | null; newVotes: number }
  | { start: false; baseModelId: string; reason: string; newVotes?: number };

/** Whether a round should start now for this base model, and the data window it would train on. */
export async function roundDecision(deps: LoopDeps, baseModelId: string, now: Date): Promise<RoundDecision> {
  const no = (reason: string, newVotes?: number): RoundDecision => ({
    start: false,
    baseModelId,
    reason,
    newVotes,
  });
  if (!deps.config.loop.enabled) return no("the loop is off (LOOP_ENABLED=false)");
  const [active] = await deps.db.orm
    .select({ id: loopRounds.id, status: loopRounds.status })
    .from(loopRounds)
    .where(
      and(eq(loopRounds.baseModelId, baseModelId), inArray(loopRounds.status, ["training", "experimenting"])),
    );
  if (active) return no(`round ${active.id} is ${active.status}`);
  const [running] = await deps.db.orm
    .select({ id: experiments.id })
    .from(experiments)
    .where(and(eq(experiments.baseModelId, baseModelId), eq(experiments.status, "running")));
  if (running) return no(`experiment ${running.id} is running`);
  const { maxRounds } = deps.config.loop;
  if (maxRounds !== null) {
    const [{ n } = { n: 0 }] = await deps.db.orm
      .select({ n: count() })
      .from(loopRounds)
      .where(eq(loopRounds.baseModelId, baseModelId));
    if (n >= maxRounds) return no(`${n} round(s) have run, the most LOOP_MAX_ROUNDS = ${maxRounds} allows`);
  }

  const champion = await currentChampion(deps.db, baseModelId);
  const championCutoff = champion?.datasetSnapshotId
    ? ((
        await deps.db.orm
          .select({ cutoff: datasetSnapshots.cutoff })
          .from(datasetSnapshots)
          .where(eq(datasetSnapshots.id, champion.datasetSnapshotId))
      )[0]?.cutoff ?? null)
    : null;
  // Votes a previous round already trained on do not start another one (a losing challenger's
  // votes would otherwise retrain at once, every tick).
  const [lastRound] = await deps.db.orm
    .select({ cutoff: datasetSnapshots.cutoff })
    .from(loopRounds)
    .innerJoin(datasetSnapshots, eq(datasetSnapshots.id, loopRounds.snapshotId))
    .where(and(eq(loopRounds.baseModelId, baseModelId), isNotNull(loopRounds.snapshotId)))
    .orderBy(desc(datasetSnapshots.cutoff))
    .limit(1);
  const counted = [championCutoff, lastRound?.cutoff ?? null].filter((d): d is Date => d !== null);
  const countFrom = counted.length > 0 ? new Date(Math.max(...counted.map((d) => d.getTime()))) : null;
  const newVotes = await countUsableVotes(deps.db, { cutoff: now, since: countFrom, baseModelId });
  const { minVotes, data } = deps.config.loop;
  if (newVotes < minVotes)
    return no(`${newVotes} new usable votes of the ${minVotes} a round needs`, newVotes);
  return { start: true, baseModelId, since: data === "since-parent" ? championCutoff : null, newVotes };
}

async function failRound(deps: LoopDeps, roundId: string, note: string): Promise<void> {
  deps.log.warn("loop round failed", { roundId, note });
  await deps.db.orm
    .update(loopRounds)
    .set({ status: "failed", note: note.slice(0, 2000), finishedAt: new Date() })
    .where(and(eq(loopRounds.id, roundId), eq(loopRounds.status, "training")));
}

/**
 * Starts a round for the base model when `roundDecision` says so: the round row, the snapshot,
 * the training runs and their jobs. Returns the round, or null when none was started.
 */
export async function maybeStartRound(
  deps: LoopDeps,
  baseModelId: string,
  now = new Date(),
): Promise<{ round: LoopRound | null; decision: RoundDecision }> {
  const decision = await roundDecision(deps, baseModelId, now);
  if (!decision.start) return { round: null, decision };
  const [base] = await deps.db.orm.select().from(baseModels).where(eq(baseModels.id, baseModelId));
  if (!base) return { round: null, decision: { start: false, baseModelId, reason: "no such base model" } };
  const champion = await currentChampion(deps.db, baseModelId);

  let round: LoopRound;
  try {
    round = await deps.db.orm.transaction(async (tx) => {
      const [r] = await tx
        .insert(loopRounds)
        .values({
          id: `round_${randomUUID()}`,
          baseModelId,
          status: "training",
          parentAdapterId: champion?.id ?? null,
          note: `${decision.newVotes} new usable votes`,
        })
        .returning();
      return r as LoopRound;
    });
  } catch (err) {
    if (pgCode(err) === "23505")
      return {
        round: null,
        decision: { start: false, baseModelId, reason: "another tick started the round" },
      };
    throw err;
  }
  deps.log.info("loop round started", {
    roundId: round.id,
    baseModelId,
    parentAdapterId: champion?.id ?? null,
  });

  let snapshot: { id: string; blobPrefix: string };
  try {
    ({ snapshot } = await createSnapshot(deps, { cutoff: now, since: decision.since, baseModelId }));
  } catch (err) {
    await failRound(
      deps,
      round.id,
      `snapshot failed: ${err instanceof NoUsableVotesError ? err.message : String(err)}`,
    );
    return { round: { ...round, status: "failed" }, decision };
  }
  let planned: ReturnType<typeof planRun>[];
  try {
    planned = deps.config.loop.objectives.map((o) =>
      planRun(deps, {
        roundId: round.id,
        base,
        snapshot,
        parent: champion ? { id: champion.id, blobPrefix: champion.blobPrefix } : null,
        objective: o.objective,
        space: o.space,
      }),
    );
  } catch (err) {
    await failRound(deps, round.id, String(err instanceof Error ? err.message : err));
    return { round: { ...round, status: "failed" }, decision };
  }
  await deps.db.orm.transaction(async (tx) => {
    await tx.update(loopRounds).set({ snapshotId: snapshot.id }).where(eq(loopRounds.id, round.id));
    await insertRuns(
      tx,
      planned.map((p) => p.run),
    );
  });
  await sendJobs(
    deps,
    planned.map((p) => p.job),
  );
  return { round: { ...round, snapshotId: snapshot.id }, decision };
}

/**
 * Moves a round in `training` on once all its runs have finished: no adapter registered →
 * `failed` (the note says why); LOOP_AUTO_EXPERIMENT off → `done`; else `experimenting`, with
 * no experiment yet (the experiments service starts it). Idempotent.
 */
export async function settleRound(
  deps: LoopDeps,
  roundId: string,
  now = new Date(),
): Promise<LoopRound | null> {
  const [round] = await deps.db.orm.select().from(loopRounds).where(eq(loopRounds.id, roundId));
  if (round?.status !== "training") return round ?? null;
  const runs = await deps.db.orm.select().from(trainingRuns).where(eq(trainingRuns.roundId, roundId));
  if (runs.length === 0) {
    if (now.getTime() - round.createdAt.getTime() > STALE_ROUND_MS)
      await failRound(deps, roundId, "no training run was started (the snapshot export did not finish)");
    return round;
  }
  if (runs.some((r) => r.status === "queued" || r.status === "running")) return round;
  const registered = await deps.db.orm
    .select({ id: adapters.id })
    .from(adapters)
    .where(
      inArray(
        adapters.id,
        runs.filter((r) => r.status === "succeeded").map((r) => r.adapterId),
      ),
    );
  if (registered.length === 0) {
    const why = runs.map((r) => `${r.objective}/${r.space}: ${r.error ?? r.status}`).join("; ");
    await failRound(deps, roundId, `no adapter was registered (${why})`);
  } else {
    const next = deps.config.loop.autoExperiment ? "experimenting" : "done";
    const note = `${registered.length} of ${runs.length} challenger(s) registered`;
    await deps.db.orm
      .update(loopRounds)
      .set({
        status: next,
        note,
        ...(next === "done" ? { finishedAt: now } : {}),
      })
      .where(and(eq(loopRounds.id, roundId), eq(loopRounds.status, "training")));
    deps.log.info("loop round trained", { roundId, next, registered: registered.length });
  }
  const [after] = await deps.db.orm.select().from(loopRounds).where(eq(loopRounds.id, roundId));
  return after ?? null;
}

/** Settles every round still in `training`. */
export async function settleTrainingRounds(deps: LoopDeps): Promise<number> {
  const open = await deps.db.orm
    .select({ id: loopRounds.id })
    .from(loopRounds)
    .where(eq(loopRounds.status, "training"));
  let moved = 0;
  for (const r of open) if ((await settleRound(deps, r.id))?.status !== "training") moved++;
  return moved;
}

/** Base models the loop can train: those with a diffusers model to train on. */
export async function trainableBaseModels(db: Deps["db"]): Promise<string[]> {
  const rows = await db.orm
    .select({ id: baseModels.id })
    .from(baseModels)
    .where(isNotNull(baseModels.diffusersUri));
  return rows.map((r) => r.id);
}

export async function findRound(db: Deps["db"], id: string): Promise<LoopRound | null> {
  const [r] = await db.orm.select().from(loopRounds).where(eq(loopRounds.id, id));
  return r ?? null;
}

export async function listRounds(db: Deps["db"], limit: number): Promise<LoopRound[]> {
  return db.orm
    .select()
    .from(loopRounds)
    .orderBy(desc(loopRounds.createdAt), sql`${loopRounds.id} desc`)
    .limit(limit);
}
