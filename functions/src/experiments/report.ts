/**
 * What `GET /api/admin/experiments[/{id}]` shows: per arm the votes, wins, ties, both-bad, the
 * win rate with its anytime-valid interval now and over time, its state and the reason, the
 * guardrail readings; the SRM checks; the experiment's decision state and what the rule says
 * now; results per prompt category; and the recorded decisions.
 */
import { desc, eq, sql } from "drizzle-orm";
import type { Config } from "../config.js";
import { experimentDecisions, experiments } from "../db/schema.js";
import type { Arm } from "../domain/pairing.js";
import type { Db } from "../platform/db/port.js";
import { rows } from "../platform/db/rows.js";
import { evaluateExperiment, type StoredDecision } from "./decide.js";
import { experimentStatistics, intervalOverTime } from "./statistics.js";

/** Experiments, newest first, with their vote counts and latest decision. */
export async function listExperiments(db: Db, opts: { status?: string | undefined; limit: number }) {
  const found = await rows<{
    id: string;
    name: string;
    status: "draft" | "running" | "decided" | "stopped";
    origin: string;
    round_id: string | null;
    base_model_id: string;
    arms: Arm[];
    decision: StoredDecision | null;
    created_at: Date | string;
    started_at: Date | string | null;
    decided_at: Date | string | null;
    votes: number;
  }>(
    db.orm,
    sql`select e.id, e.name, e.status, e.origin, e.round_id, e.base_model_id, e.arms, e.decision,
          e.created_at, e.started_at, e.decided_at,
          (select count(*)::int from votes v join pairs p on p.id = v.pair_id where p.experiment_id = e.id) as votes
        from experiments e
        ${opts.status ? sql`where e.status = ${opts.status}` : sql``}
        order by e.created_at desc, e.id limit ${opts.limit}`,
  );
  const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
  return found.map((e) => ({
    id: e.id,
    name: e.name,
    status: e.status,
    origin: e.origin,
    roundId: e.round_id,
    baseModelId: e.base_model_id,
    arms: e.arms,
    votes: e.votes,
    decision: e.decision ? { action: e.decision.action, reason: e.decision.reason } : null,
    createdAt: iso(e.created_at) as string,
    startedAt: iso(e.started_at),
    decidedAt: iso(e.decided_at),
  }));
}

export async function experimentReport(db: Db, config: Pick<Config, "experiments">, id: string) {
  const [e] = await db.orm.select().from(experiments).where(eq(experiments.id, id));
  if (!e) return null;
  const ev = await evaluateExperiment(db, config, e);
  const stored = e.decision as StoredDecision | null;
  const armState = (name: string) =>
    (e.status === "running" ? ev.verdict.arms : (stored?.arms ?? [])).find((a) => a.arm === name) ?? null;
  const arms = e.arms.map((a, i) => {
    const s = ev.stats.arms.find((x) => x.arm === a.name);
    const ops = ev.operations.find((o) => o.arm === a.name);
    const state = armState(a.name);
    return {
      name: a.name,
      adapterId: a.adapterId,
      role: i === 0 ? ("control" as const) : ("challenger" as const),
      allocation: e.allocation[i] ?? 0,
      state: i === 0 ? null : (state?.state ?? null),
      reason: i === 0 ? null : (state?.reason ?? null),
      statistics: s ?? null,
      overTime: i === 0 ? [] : intervalOverTime(e.arms, ev.outcomes, a.name, ev.settings),
      guardrails: {
        generations: ops?.generations ?? 0,
        failed: ops?.failed ?? 0,
        failureRate: ops && ops.generations > 0 ? ops.failed / ops.generations : null,
        latencyMedianMs: ops?.latencyMedianMs ?? null,
        bothBadRate: ops && ops.votes > 0 ? ops.bothBad / ops.votes : null,
        alarms: ev.alarms.filter((g) => g.arm === a.name),
      },
    };
  });
  const categories = [...new Set(ev.outcomes.map((o) => o.category ?? "(none)"))].sort();
  const byCategory = categories.map((category) => {
    const mine = ev.outcomes.filter((o) => (o.category ?? "(none)") === category);
    return { category, votes: mine.length, arms: experimentStatistics(e.arms, mine, ev.settings).arms };
  });
  const history = await db.orm
    .select()
    .from(experimentDecisions)
    .where(eq(experimentDecisions.experimentId, id))
    .orderBy(desc(experimentDecisions.createdAt), desc(experimentDecisions.id))
    .limit(200);
  return {
    id: e.id,
    name: e.name,
    status: e.status,
    origin: e.origin,
    roundId: e.roundId,
    baseModelId: e.baseModelId,
    promptSetId: e.promptSetId,
    createdAt: e.createdAt.toISOString(),
    startedAt: e.startedAt?.toISOString() ?? null,
    decidedAt: e.decidedAt?.toISOString() ?? null,
    settings: { ...ev.settings } as Record<string, number>,
    method: ev.stats.method,
    alphaPerArm: ev.stats.alphaPerArm,
    votes: ev.outcomes.length,
    arms,
    srm: ev.srm,
    /** The latest recorded decision. */
    decision: stored ? { action: stored.action, reason: stored.reason, at: stored.at ?? null } : null,
    /** What the rule says on the votes as they are now (running experiments act on it at the next tick). */
    ruleNow:
      e.status === "running"
        ? { action: ev.verdict.action, arm: ev.verdict.arm, reason: ev.verdict.reason, bar: ev.verdict.bar }
        : null,
    byCategory,
    decisions: history.map((d) => ({
      id: d.id,
      action: d.action,
      arm: d.arm,
      reason: d.reason,
      actor: d.actor,
      numbers: d.numbers,
      at: d.createdAt.toISOString(),
    })),
  };
}
