/**
 * Deciding a running experiment: read its usable votes and operations, compute the statistics
 * (`domain/stats`, through `statistics.ts`), apply the decision rule (`domain/experimentDecision`)
 * and act on it — promote the winner through the adapter registry (atomically: one champion per
 * base model), retire the challengers that lost, or stop the experiment as untrustworthy. Every
 * decision is recorded in `experiment_decisions` with the numbers it used; a `continue` is
 * recorded when new votes arrived since the last record, so a quiet experiment adds no rows.
 *
 * Run by the scheduler tick for every running experiment (every LOOP_CHECK_SECONDS) and by
 * `POST /api/admin/experiments/{id}/decide`.
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Config } from "../config.js";
import { experimentDecisions, experiments } from "../db/schema.js";
import {
  type ArmEvidence,
  type ArmVerdict,
  allocationAfter,
  decideExperiment,
  type ExperimentVerdict,
  guardrailAlarms,
} from "../domain/experimentDecision.js";
import type { Arm } from "../domain/pairing.js";
import type { Db } from "../platform/db/port.js";
import type { Logger } from "../platform/log.js";
import { armOperations, experimentOutcomes } from "./evidence.js";
import {
  applyOutcome,
  applyPendingOutcomes,
  closeExperiment,
  type ExperimentRow,
  lockExperimentStatus,
  type Tx,
} from "./finish.js";
import { frozenSettings } from "./settings.js";
import { experimentStatistics, srmReadings } from "./statistics.js";

export interface DecisionResult {
  experimentId: string;
  action: ExperimentVerdict["action"];
  arm: string | null;
  reason: string;
  /** Whether a decision row was written (a `continue` without new votes writes none). */
  recorded: boolean;
}

/** The latest decision stored on the experiment row: arm states and the votes it saw. */
export interface StoredDecision {
  action: string;
  reason: string;
  votes?: number;
  arms?: ArmVerdict[];
  at?: string;
}

/** Arms an earlier decision took out (retired or stopped): they keep that state. */
export function settledArms(
  decision: StoredDecision | null,
): Map<string, { state: "retire" | "stopped"; reason: string }> {
  const out = new Map<string, { state: "retire" | "stopped"; reason: string }>();
  for (const a of decision?.arms ?? [])
    if (a.state === "retire" || a.state === "stopped") out.set(a.arm, { state: a.state, reason: a.reason });
  return out;
}

/** Everything the rule needs about one experiment, plus the verdict: also what the admin view shows. */
export async function evaluateExperiment(db: Db, config: Pick<Config, "experiments">, e: ExperimentRow) {
  const settings = frozenSettings(e.settings, config);
  const control = (e.arms[0] as Arm).name;
  const challengers = e.arms.slice(1);
  const outcomes = await experimentOutcomes(db, e.id, control);
  const stats = experimentStatistics(e.arms, outcomes, settings);
  const settled = settledArms(e.decision as StoredDecision | null);
  const operations = await armOperations(db, e.id, e.arms, outcomes);
  const alarms = guardrailAlarms(control, operations, settings);
  const srm = srmReadings(e.arms, e.allocation, outcomes, settings.alpha, settled.size > 0);
  const evidence: ArmEvidence[] = challengers.map((a) => {
    const s = stats.arms.find((x) => x.arm === a.name);
    return {
      arm: a.name,
      n: s?.n ?? 0,
      estimate: s?.estimate ?? 0.5,
      lower: s?.lower ?? 0,
      upper: s?.upper ?? 1,
      settled: settled.get(a.name),
    };
  });
  const verdict = decideExperiment({ control, arms: evidence, settings, srm, guardrails: alarms });
  return { settings, control, outcomes, stats, operations, alarms, srm, verdict };
}

/** Decides one experiment now; null when it is not running. */
export async function decideRunningExperiment(
  deps: { db: Db; config: Pick<Config, "experiments">; log: Logger },
  experimentId: string,
  actor: "loop" | "admin" = "loop",
): Promise<DecisionResult | null> {
  const [e] = await deps.db.orm.select().from(experiments).where(eq(experiments.id, experimentId));
  if (e?.status !== "running") return null;
  const ev = await evaluateExperiment(deps.db, deps.config, e);
  const { verdict } = ev;
  const previous = e.decision as StoredDecision | null;
  const votes = ev.outcomes.length;
  const numbers = {
    bar: verdict.bar,
    votes,
    method: ev.stats.method,
    alphaPerArm: ev.stats.alphaPerArm,
    arms: ev.stats.arms,
    srm: ev.srm,
    guardrails: ev.alarms,
    operations: ev.operations,
    settings: ev.settings,
  };
  const armsChanged =
    JSON.stringify(verdict.arms.map((a) => a.state)) !==
    JSON.stringify((previous?.arms ?? []).map((a) => a.state));
  const newVotes = previous?.votes !== votes;
  const stored: StoredDecision = {
    action: verdict.action,
    reason: verdict.reason,
    votes,
    arms: verdict.arms,
    at: new Date().toISOString(),
  };

  const recorded = await deps.db.orm.transaction(async (tx) => {
    if ((await lockExperimentStatus(tx as unknown as Tx, e.id)) !== "running") return false;
    if (verdict.action === "continue" && !armsChanged && !newVotes) return false;
    await tx.insert(experimentDecisions).values({
      id: `dec_${randomUUID()}`,
      experimentId: e.id,
      action: verdict.action,
      arm: verdict.arm,
      reason: verdict.reason,
      actor,
      numbers,
    });
    if (verdict.action === "continue") {
      await tx
        .update(experiments)
        .set({ decision: { ...stored }, allocation: allocationAfter(e.arms, e.allocation, verdict.arms) })
        .where(eq(experiments.id, e.id));
      return true;
    }
    await closeExperiment(
      tx as unknown as Tx,
      e,
      { action: verdict.action, winner: verdict.arm, reason: verdict.reason, actor },
      { ...stored },
    );
    return true;
  });
  if (recorded && verdict.action !== "continue") {
    await applyOutcome(deps, e, {
      action: verdict.action,
      winner: verdict.arm,
      reason: verdict.reason,
      actor,
    });
    deps.log.info("experiment decided", {
      experimentId: e.id,
      action: verdict.action,
      arm: verdict.arm,
      reason: verdict.reason,
    });
  }
  return { experimentId: e.id, action: verdict.action, arm: verdict.arm, reason: verdict.reason, recorded };
}

/**
 * The scheduler tick's step: finishes outcomes a crash left half-applied, then decides every
 * running experiment; returns what each decision was.
 */
export async function decideRunningExperiments(deps: {
  db: Db;
  config: Pick<Config, "experiments">;
  log: Logger;
}): Promise<DecisionResult[]> {
  await applyPendingOutcomes(deps);
  const running = await deps.db.orm
    .select({ id: experiments.id })
    .from(experiments)
    .where(eq(experiments.status, "running"));
  const out: DecisionResult[] = [];
  for (const r of running) {
    const d = await decideRunningExperiment(deps, r.id, "loop");
    if (d) out.push(d);
  }
  return out;
}
