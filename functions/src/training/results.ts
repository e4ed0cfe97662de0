/**
 * The results queue's messages, whoever sent them (the local trainer or the GPU worker in AWS):
 * `training_progress` updates its run; `training_result` registers the adapter, finishes the run
 * and settles the run's loop round at once (the scheduler tick would do it on its next turn).
 */
import type { Deps } from "../deps.js";
import { settleRound } from "../loop/rounds.js";
import { applyProgress, applyResult } from "./runs.js";

export async function handleResultMessage(
  deps: Pick<Deps, "db" | "blobs" | "queue" | "config" | "log">,
  body: unknown,
): Promise<void> {
  const type = (body as { type?: unknown } | null)?.type;
  if (type === "training_progress") {
    await applyProgress(deps.db, body);
    return;
  }
  const { run } = await applyResult(deps, body);
  if (run?.roundId) await settleRound(deps, run.roundId);
}
