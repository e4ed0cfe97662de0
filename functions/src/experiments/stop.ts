/**
 * A person stops a running experiment: no more experiment pairs are planned for it, no adapter
 * changes status, its loop round ends, and the stop is recorded with the numbers at that moment.
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Config } from "../config.js";
import { experimentDecisions, experiments } from "../db/schema.js";
import { ApiError } from "../http/errors.js";
import type { Db } from "../platform/db/port.js";
import { evaluateExperiment } from "./decide.js";
import { closeExperiment, lockExperimentStatus, type Tx } from "./finish.js";

export async function stopExperiment(
  deps: { db: Db; config: Pick<Config, "experiments"> },
  id: string,
  reason: string | undefined,
): Promise<{ id: string; status: string }> {
  const [e] = await deps.db.orm.select().from(experiments).where(eq(experiments.id, id));
  if (!e) throw new ApiError(404, "experiment_not_found", "There is no such experiment.");
  if (e.status !== "running")
    throw new ApiError(
      409,
      "experiment_not_running",
      `The experiment is ${e.status}; only a running one can be stopped.`,
    );
  const ev = await evaluateExperiment(deps.db, deps.config, e);
  const why = reason?.trim() || "stopped by an admin";
  await deps.db.orm.transaction(async (tx) => {
    if ((await lockExperimentStatus(tx, id)) !== "running")
      throw new ApiError(409, "experiment_not_running", "The experiment was decided meanwhile.");
    await tx.insert(experimentDecisions).values({
      id: `dec_${randomUUID()}`,
      experimentId: id,
      action: "stop",
      arm: null,
      reason: why,
      actor: "admin",
      numbers: {
        votes: ev.outcomes.length,
        arms: ev.stats.arms,
        srm: ev.srm,
        guardrails: ev.alarms,
        ruleNow: ev.verdict,
      },
    });
    await closeExperiment(
      tx as Tx,
      e,
      { action: "stop", winner: null, reason: why, actor: "admin" },
      {
        action: "stop",
        reason: why,
        votes: ev.outcomes.length,
        arms: ev.verdict.arms,
        at: new Date().toISOString(),
      },
    );
  });
  return { id, status: "stopped" };
}
