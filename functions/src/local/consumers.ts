/**
 * The queue consumers the local platform runs inside the Node server process (in AWS each one
 * is its own Lambda or the GPU worker). Returns a function that stops them all.
 */
import type { Deps } from "../deps.js";
import { type BatchHandler, eachDelivery, pollQueue } from "../platform/queue/consumer.js";
import type { QueueName } from "../platform/queue/port.js";
import { localTrainer } from "../training/localTrainer.js";
import { handleResultMessage } from "../training/results.js";

export interface LocalConsumer {
  queue: QueueName;
  handle: BatchHandler;
  visibilityTimeoutSeconds: number;
  batchSize?: number;
}

export function localConsumers(deps: Deps, signal?: AbortSignal): LocalConsumer[] {
  return [
    {
      queue: "results",
      visibilityTimeoutSeconds: 60,
      handle: eachDelivery(async (d) => {
        await handleResultMessage(deps, d.body);
      }),
    },
    {
      queue: "training",
      visibilityTimeoutSeconds: 300,
      handle: eachDelivery(
        localTrainer({
          stateDir: deps.config.stateDir,
          queue: deps.queue,
          log: deps.log,
          maxAttempts: deps.config.queue.backend === "pg" ? deps.config.queue.maxAttempts : undefined,
          signal,
        }),
      ),
    },
  ];
}

export function startLocalConsumers(deps: Deps, given?: LocalConsumer[]): () => Promise<void> {
  const controller = new AbortController();
  const consumers = given ?? localConsumers(deps, controller.signal);
  const loops = consumers.map((c) =>
    pollQueue(deps.queue, c.queue, c.handle, {
      log: deps.log,
      signal: controller.signal,
      visibilityTimeoutSeconds: c.visibilityTimeoutSeconds,
      batchSize: c.batchSize ?? 1,
    }),
  );
  return async () => {
    controller.abort();
    await Promise.all(loops);
  };
}
