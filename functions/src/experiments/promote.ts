import { eq } from "drizzle-orm";
import type { Config } from "../config.js";
import { experiments } from "../db/schema.js";
import type { Arm } from "../domain/pairing.js";
import { ApiError } from "../http/errors.js";
import type { Db } from "../platform/db/port.js";
import type { Logger } from "../platform/log.js";
import { recordAdminDecision } from "./adminDecision.js";
import { evaluateExperiment } from "./decide.js";
import { applyOutcome, closeExperiment, type Tx } from "./finish.js";

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
    await recordAdminDecision(tx as Tx, id, { action, arm: isControl ? null : arm.name, reason: why }, ev);
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
