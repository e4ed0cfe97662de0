/**
 * A person's decision on a running experiment (stop, or promote an arm), recorded inside the
 * caller's transaction with the numbers the rule would read right now. Refuses with 409 when the
 * experiment was decided meanwhile (the row is locked first, so the loop cannot decide it too).
 */
import { randomUUID } from "node:crypto";
import { experimentDecisions } from "../db/schema.js";
import { ApiError } from "../http/errors.js";
import type { evaluateExperiment } from "./decide.js";
import { lockExperimentStatus, type Tx } from "./finish.js";

export async function recordAdminDecision(
  tx: Tx,
  experimentId: string,
  decision: { action: string; arm: string | null; reason: string },
  ev: Awaited<ReturnType<typeof evaluateExperiment>>,
): Promise<void> {
  if ((await lockExperimentStatus(tx, experimentId)) !== "running")
    throw new ApiError(409, "experiment_not_running", "The experiment was decided meanwhile.");
  await tx.insert(experimentDecisions).values({
    id: `dec_${randomUUID()}`,
    experimentId,
    ...decision,
    actor: "admin",
    numbers: {
      votes: ev.outcomes.length,
      arms: ev.stats.arms,
      srm: ev.srm,
      guardrails: ev.alarms,
      operations: ev.operations,
      settings: ev.settings,
      ruleNow: ev.verdict,
    },
  });
}
