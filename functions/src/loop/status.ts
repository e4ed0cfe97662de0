/**
 * What `GET /api/admin/loop` shows per base model: the champion, the active round and its
 * training runs, the active experiment with each challenger's interval, the usable votes since
 * the champion's snapshot, and what the loop will do next and when. The next step is read from
 * the same rules the tick applies (`roundDecision`, the experiment decision rule), so the
 * status never promises what the tick would not do.
 */
import { and, desc, eq, inArray, sql } from "drizzle-orm";
import { currentChampion } from "../adapters/registry.js";
import { datasetSnapshots, experiments, loopRounds, trainingRuns } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { evaluateExperiment } from "../experiments/decide.js";
import { rows } from "../platform/db/rows.js";
import { countUsableVotes } from "../snapshots/export.js";
import { usableVoteCondition } from "../voting/usableVotes.js";
import { roundDecision } from "./rounds.js";

type StatusDeps = Pick<Deps, "db" | "blobs" | "queue" | "config" | "log">;

export type NextAction =
  | "off"
  | "collect_votes"
  | "start_round"
  | "wait_for_training"
  | "start_experiment"
  | "decide_experiment"
  | "wait";

export interface NextStep {
  action: NextAction;
  detail: string;
  /** When it is expected, if it can be said (ISO time); the tick runs every `checkSeconds`. */
  expectedAt: string | null;
}

/** Usable votes per second over the last `windowSeconds` (the rate new votes arrive at). */
async function recentVoteRate(deps: StatusDeps, now: Date, windowSeconds = 600): Promise<number> {
  const [r] = await rows<{ n: number }>(
    deps.db.orm,
    sql`select count(*)::int as n from votes v join pairs p on p.id = v.pair_id join voters vr on vr.id = v.voter_id
        where v.created_at > ${new Date(now.getTime() - windowSeconds * 1000).toISOString()}::timestamptz
          and ${usableVoteCondition()}`,
  );
  return (r?.n ?? 0) / windowSeconds;
}

const at = (now: Date, seconds: number) => new Date(now.getTime() + seconds * 1000).toISOString();

export async function baseModelLoopStatus(deps: StatusDeps, baseModelId: string, now = new Date()) {
  const { loop } = deps.config;
  const nextTick = at(now, loop.checkSeconds);
  const champion = await currentChampion(deps.db, baseModelId);
  const [snapshot] = champion?.datasetSnapshotId
    ? await deps.db.orm
        .select()
        .from(datasetSnapshots)
        .where(eq(datasetSnapshots.id, champion.datasetSnapshotId))
    : [];
  const usableVotesSinceChampionSnapshot = await countUsableVotes(deps.db, {
    cutoff: now,
    since: snapshot?.cutoff ?? null,
    baseModelId,
  });
  const [round] = await deps.db.orm
    .select()
    .from(loopRounds)
    .where(
      and(eq(loopRounds.baseModelId, baseModelId), inArray(loopRounds.status, ["training", "experimenting"])),
    )
    .limit(1);
  const runs = round
    ? await deps.db.orm
        .select()
        .from(trainingRuns)
        .where(eq(trainingRuns.roundId, round.id))
        .orderBy(trainingRuns.createdAt, trainingRuns.id)
    : [];
  const [running] = await deps.db.orm
    .select()
    .from(experiments)
    .where(and(eq(experiments.baseModelId, baseModelId), eq(experiments.status, "running")))
    .orderBy(desc(experiments.createdAt))
    .limit(1);
  const evaluated = running ? await evaluateExperiment(deps.db, deps.config, running) : null;

  let next: NextStep;
  if (evaluated && running) {
    const v = evaluated.verdict;
    next =
      v.action === "continue"
        ? {
            action: "wait",
            detail: `experiment ${running.id} is collecting votes: ${v.arms.map((a) => `${a.arm}: ${a.reason}`).join("; ")}`,
            expectedAt: null,
          }
        : {
            action: "decide_experiment",
            detail: `the next tick will ${v.action}${v.arm ? ` ${v.arm}` : ""}: ${v.reason}`,
            expectedAt: nextTick,
          };
  } else if (round?.status === "training") {
    const open = runs.filter((r) => r.status === "queued" || r.status === "running");
    const eta = Math.max(0, ...open.map((r) => r.progress?.etaSeconds ?? 0));
    next =
      runs.length === 0
        ? { action: "wait_for_training", detail: "exporting the round's snapshot", expectedAt: null }
        : open.length
          ? {
              action: "wait_for_training",
              detail: `${runs.length - open.length} of ${runs.length} training run(s) finished`,
              expectedAt: open.every((r) => r.progress?.etaSeconds != null)
                ? at(now, eta + loop.checkSeconds)
                : null,
            }
          : {
              action: "wait_for_training",
              detail: "all runs finished; the next tick settles the round",
              expectedAt: nextTick,
            };
  } else if (round?.status === "experimenting") {
    next = {
      action: "start_experiment",
      detail: `round ${round.id}'s challengers are registered`,
      expectedAt: nextTick,
    };
  } else {
    const d = await roundDecision(deps, baseModelId, now);
    if (d.start)
      next = {
        action: "start_round",
        detail: `${d.newVotes} new usable votes reached LOOP_MIN_VOTES = ${loop.minVotes}`,
        expectedAt: nextTick,
      };
    else if (!loop.enabled) next = { action: "off", detail: d.reason, expectedAt: null };
    else if (d.newVotes !== undefined) {
      const missing = loop.minVotes - d.newVotes;
      const rate = await recentVoteRate(deps, now);
      next = {
        action: "collect_votes",
        detail: `${d.reason}; ${missing} to go${rate > 0 ? ` at ${(rate * 60).toFixed(1)} usable votes/min (last 10 min)` : ", no votes in the last 10 min"}`,
        expectedAt: rate > 0 ? at(now, missing / rate + loop.checkSeconds) : null,
      };
    } else next = { action: "wait", detail: d.reason, expectedAt: null };
  }

  return {
    baseModelId,
    champion: champion
      ? {
          adapterId: champion.id,
          objective: champion.objective,
          space: champion.space,
          datasetSnapshotId: champion.datasetSnapshotId,
          promotedAt: champion.promotedAt?.toISOString() ?? null,
        }
      : null,
    usableVotesSinceChampionSnapshot,
    activeRound: round
      ? {
          id: round.id,
          status: round.status,
          snapshotId: round.snapshotId,
          note: round.note,
          createdAt: round.createdAt.toISOString(),
          runs: runs.map((r) => ({
            id: r.id,
            adapterId: r.adapterId,
            objective: r.objective,
            space: r.space,
            status: r.status,
            progress: r.progress ?? null,
            error: r.error,
          })),
        }
      : null,
    activeExperiment:
      running && evaluated
        ? {
            id: running.id,
            name: running.name,
            votes: evaluated.outcomes.length,
            arms: evaluated.stats.arms.map((s) => ({
              arm: s.arm,
              n: s.n,
              estimate: s.estimate,
              lower: s.lower,
              upper: s.upper,
              state: evaluated.verdict.arms.find((a) => a.arm === s.arm)?.state ?? null,
            })),
          }
        : null,
    next,
  };
}

export async function loopStatus(deps: StatusDeps, now = new Date()) {
  const models = await deps.db.orm.execute(sql`select id from base_models order by created_at, id`);
  const ids = (models as unknown as { rows: { id: string }[] }).rows.map((r) => r.id);
  return {
    enabled: deps.config.loop.enabled,
    checkSeconds: deps.config.loop.checkSeconds,
    objectives: deps.config.loop.objectives.map((o) => `${o.objective}:${o.space}`),
    baseModels: await Promise.all(ids.map((id) => baseModelLoopStatus(deps, id, now))),
  };
}
