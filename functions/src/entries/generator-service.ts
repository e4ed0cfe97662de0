/**
 * The generator as a long-running process: the ECS service on GPU instances (image:
 * functions/Dockerfile.generator-gpu, INFERENCE_EXECUTION_PROVIDER=cuda). The same consumer as the
 * generator Lambda, in poll loops (one per inference worker, a pair's two jobs at a time, SQS long
 * polling) until SIGTERM, when the loops finish the jobs in hand and the process exits. Secrets
 * are read by ARN at start (`lambda-config.ts`); the model is copied from the blob store
 * (MODEL_DIR=blob:<prefix>) into STATE_DIR on the first job.
 */
import { buildDeps } from "../deps.js";
import { SQS_GENERATION_MAX_RECEIVES, startLocalGenerator } from "../generator/consumer.js";
import { exitOnConfigError } from "./boot.js";
import { loadLambdaConfig } from "./lambda-config.js";

/** SQS long polling: an idle service makes one receive call per loop every 20 seconds. */
const RECEIVE_WAIT_SECONDS = 20;

const config = await loadLambdaConfig().catch(exitOnConfigError);
const deps = await buildDeps(config, { migrate: false });
const stop = startLocalGenerator(
  { ...deps, maxAttempts: config.queue.backend === "sqs" ? SQS_GENERATION_MAX_RECEIVES : undefined },
  { waitSeconds: RECEIVE_WAIT_SECONDS },
);
deps.log.info("generator service started", {
  queue: deps.queue.kind,
  workers: config.inference.workers,
  executionProvider: config.inference.executionProvider,
  modelDir: config.inference.modelDir,
});

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  deps.log.info("generator service stopping", { signal });
  stop()
    .then(() => deps.close())
    .then(
      () => process.exit(0),
      (err: unknown) => {
        deps.log.error("generator service stopped with an error", { error: String(err) });
        process.exit(1);
      },
    );
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
