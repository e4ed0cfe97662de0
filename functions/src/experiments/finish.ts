/**
 * Ending an experiment, in two steps:
 * 1. `closeExperiment`, inside the caller's transaction with the decision row: the experiment
 *    marked decided or stopped (so no new experiment pairs are planned and no second decision
 *    can be taken) and its loop round finished;
 * 2. `applyOutcome`, right after it commits: the winner promoted through the adapter registry
 *    (atomic, one champion per base model, the previous champion retired) and the challengers
 *    that lost retired; then the decision is marked applied. `applyPendingOutcomes` (each tick)
 *    finishes any outcome a crash left between the two steps.
 * Pairs already generated keep their labels; new data pairs use the new champion at once.
 */
import { and, eq, sql } from "drizzle-orm";
import { promoteAdapter, retireAdapter } from "../adapters/registry.js";
import { adapters, experiments, loopRounds } from "../db/schema.js";
import type { Arm } from "../domain/pairing.js";
import type { Db, Orm } from "../platform/db/port.js";
import type { Logger } from "../platform/log.js";

export type Tx = Parameters<Parameters<Orm["transaction"]>[0]>[0];
export type ExperimentRow = typeof experiments.$inferSelect;

/** Locks the experiment's row for the transaction and returns its status (undefined: no such row). */
export async function lockExperimentStatus(tx: Tx, id: string): Promise<string | undefined> {
  const r = await tx.execute(sql`select status from experiments where id = ${id} for update`);
  return (r as unknown as { rows: { status: string }[] }).rows[0]?.status;
}

export type FinishAction = "promote" | "retire" | "stop_untrustworthy" | "stop";

export interface Outcome {
  action: FinishAction;
  /** The promoted arm (for `promote`). */
  winner: string | null;
  reason: string;
  actor: "loop" | "admin";
}

const changesAdapters = (a: FinishAction) => a === "promote" || a === "retire";

export async function closeExperiment(
  tx: Tx,
  e: ExperimentRow,
  outcome: Outcome,
  decision: Record<string, unknown>,
): Promise<void> {
  if (outcome.action === "promote" && !e.arms.some((a) => a.name === outcome.winner))
    throw new Error(`experiment ${e.id} has no arm ${outcome.winner}`);
  const decided = changesAdapters(outcome.action);
  const stored = { ...decision, winner: outcome.winner, actor: outcome.actor, applied: !decided };
  await tx.execute(
    sql`update experiments set status = ${decided ? "decided" : "stopped"}, decided_at = now(),
          decision = ${JSON.stringify(stored)}::jsonb
        where id = ${e.id}`,
  );
  if (e.roundId)
    await tx
      .update(loopRounds)
      .set({
        status: decided ? "done" : "failed",
        finishedAt: sql`now()`,
        note: `experiment ${e.id} ${outcome.action}${outcome.winner ? ` ${outcome.winner}` : ""}: ${outcome.reason}`.slice(
          0,
          2000,
        ),
      })
      .where(and(eq(loopRounds.id, e.roundId), eq(loopRounds.status, "experimenting")));
}

/**
 * Promotes the winner (a challenger without an adapter, the base model, retires the champion)
 * and retires the challengers that did not win — never the control, never an adapter that is
 * champion by now. Idempotent: the registry's changes are.
 */
export async function applyOutcome(
  deps: { db: Db; log: Logger },
  e: ExperimentRow,
  outcome: Pick<Outcome, "action" | "winner" | "reason" | "actor">,
): Promise<{ promotedAdapterId: string | null }> {
  const arms = e.arms as Arm[];
  const control = arms[0] as Arm;
  const change = { actor: outcome.actor, reason: `experiment ${e.id}: ${outcome.reason}` };
  let promotedAdapterId: string | null = null;
  const winner = outcome.action === "promote" ? arms.find((a) => a.name === outcome.winner) : undefined;
  if (winner && winner.name !== control.name) {
    if (winner.adapterId) {
      promotedAdapterId = (await promoteAdapter(deps.db, winner.adapterId, change, deps.log)).adapter.id;
    } else if (control.adapterId) {
      await retireAdapter(deps.db, control.adapterId, change, deps.log);
    }
  }
  if (changesAdapters(outcome.action)) {
    const keep = new Set([control.adapterId, winner?.adapterId].filter((x): x is string => !!x));
    for (const a of arms.slice(1)) {
      if (!a.adapterId || keep.has(a.adapterId)) continue;
      const [row] = await deps.db.orm
        .select({ status: adapters.status })
        .from(adapters)
        .where(eq(adapters.id, a.adapterId));
      if (row?.status === "candidate") await retireAdapter(deps.db, a.adapterId, change, deps.log);
    }
  }
  await deps.db.orm.execute(
    sql`update experiments set decision = jsonb_set(decision, '{applied}', 'true'::jsonb) where id = ${e.id}`,
  );
  return { promotedAdapterId };
}

/** Outcomes recorded but not applied (a crash between the two steps): applied now. */
export async function applyPendingOutcomes(deps: { db: Db; log: Logger }): Promise<number> {
  const pending = await deps.db.orm
    .select()
    .from(experiments)
    .where(and(eq(experiments.status, "decided"), sql`(${experiments.decision} ->> 'applied') = 'false'`));
  for (const e of pending) {
    const d = e.decision as { action?: string; winner?: string | null; reason?: string; actor?: string };
    await applyOutcome(deps, e, {
      action: d.action === "promote" ? "promote" : "retire",
      winner: d.winner ?? null,
      reason: d.reason ?? "applied after a restart",
      actor: d.actor === "admin" ? "admin" : "loop",
    });
  }
  return pending.length;
}
