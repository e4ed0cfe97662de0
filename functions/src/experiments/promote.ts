/**
 * A person promotes an arm of a running experiment, whatever the rule says (the override is
 * recorded with the numbers at that moment, beside what the rule said). Promoting the control
 * keeps the champion and retires the challengers.
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Config } from "../config.js";
import { experimentDecisions, experiments } from "../db/schema.js";
import type { Arm } from "../domain/pairing.js";
import { ApiError } from "../http/errors.js";
import type { Db } from "../platform/db/port.js";
import type { Logger } from "../platform/log.js";
import { evaluateExperiment } from "./decide.js";
import { applyOutcome, closeExperiment, lockExperimentStatus, type Tx } from "./finish.js";

export async function promoteArm(
  deps: { db: Db; config: Pick<Config, "experiments">; log: Logger },
  id: string,
  armName: string,
  reason: string | undefined,
): Promise<{ id: string; status: string; promotedAdapterId: string | null }> {
  const [e] = await deps.db.orm.select().from(experiments).where(eq(experiments.id, id));
  if (!e) throw new ApiError(404, "experiment_not_found", "There is no such experiment.");
  if (e.status !== "running")
    throw new ApiError(
      409,
      "experiment_not_running",
      `The experiment is ${e.status}; only a running one can be promoted from.`,
    );
  const arm = e.arms.find((a) => a.name === armName);
  if (!arm)
    throw new ApiError(
      400,
      "unknown_arm",
      `The experiment has no arm ${JSON.stringify(armName)}; its arms are ${e.arms.map((a) => a.name).join(", ")}.`,
    );
  const isControl = arm.name === (e.arms[0] as Arm).name;
  const ev = await evaluateExperiment(deps.db, deps.config, e);
  const why = reason?.trim() || `${arm.name} promoted by an admin`;
  const action: "retire" | "promote" = isControl ? "retire" : "promote";
  const outcome = { action, winner: isControl ? null : arm.name, reason: why, actor: "admin" as const };
  await deps.db.orm.transaction(async (tx) => {
    if ((await lockExperimentStatus(tx, id)) !== "running")
      throw new ApiError(409, "experiment_not_running", "The experiment was decided meanwhile.");
    await tx.insert(experimentDecisions).values({
      id: `dec_${randomUUID()}`,
      experimentId: id,
      action,
      arm: isControl ? null : arm.name,
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
    await closeExperiment(tx as Tx, e, outcome, {
      action,
      reason: why,
      votes: ev.outcomes.length,
      arms: e.arms
        .slice(1)
        .map((a) => ({ arm: a.name, state: a.name === arm.name ? "promote" : "retire", reason: why })),
      at: new Date().toISOString(),
    });
  });
  const applied = await applyOutcome(deps, e, outcome);
  return { id, status: "decided", promotedAdapterId: applied.promotedAdapterId };
}
