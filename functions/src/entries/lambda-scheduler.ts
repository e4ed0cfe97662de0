/** Lambda entry run by EventBridge Scheduler: the loop's tick, then a GPU worker if training jobs wait. */
import { buildDeps } from "../deps.js";
import { loopTick, type TickReport } from "../loop/tick.js";
import { batchGpuWorkerLauncher, ensureGpuWorker } from "../training/gpuWorker.js";
import { loadLambdaConfig } from "./lambda-config.js";

const deps = await buildDeps(await loadLambdaConfig(), { migrate: false });
const launcher =
  process.env.BATCH_JOB_QUEUE_ARN && process.env.BATCH_JOB_DEFINITION_ARN
    ? batchGpuWorkerLauncher({
        jobQueueArn: process.env.BATCH_JOB_QUEUE_ARN,
        jobDefinitionArn: process.env.BATCH_JOB_DEFINITION_ARN,
      })
    : null;

export async function handler(): Promise<{ loop: TickReport; gpuWorkerJobId: string | null }> {
  const loop = await loopTick(deps);
  const gpuWorkerJobId = launcher ? await ensureGpuWorker(deps.queue, launcher) : null;
  deps.log.info("scheduler tick", { gpuWorkerJobId });
  return { loop, gpuWorkerJobId };
}
