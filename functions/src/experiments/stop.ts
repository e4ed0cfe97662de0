import { eq } from "drizzle-orm";
import type { Config } from "../config.js";
import { experiments } from "../db/schema.js";
import { ApiError } from "../http/errors.js";
import type { Db } from "../platform/db/port.js";
import { recordAdminDecision } from "./adminDecision.js";
import { evaluateExperiment } from "./decide.js";
import { closeExperiment, type Tx } from "./finish.js";

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
    await recordAdminDecision(tx as Tx, id, { action: "stop", arm: null, reason: why }, ev);
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
