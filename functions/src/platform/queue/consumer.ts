/**
 * Running handlers over queue deliveries, the same way everywhere: the local process polls the
 * queue (`pollQueue`), a Lambda receives SQS batches (`sqsBatchHandler`). Handlers see a batch
 * (the generator renders a pair's two jobs together) and return one outcome per delivery: an
 * `ok` delivery is acknowledged, a failed one is given back for a retry (and, after the last
 * attempt, to the dead letters). Handlers must be idempotent on the job id: delivery is at least once.
 */
import type { Logger } from "../log.js";
import type { Delivery, JobQueue, QueueName } from "./port.js";

export interface JobContext {
  /** Keeps the lease of a long job alive. A no-op where the runtime owns visibility (Lambda). */
  extend(seconds: number): Promise<void>;
}

/** A handler of one job: returning acknowledges it, throwing gives it back. */
export type JobHandler = (delivery: Delivery, ctx: JobContext) => Promise<void>;

export type Outcome = { ok: true } | { ok: false; error: Error };

/** A handler of a batch: one outcome per delivery, in order. */
export type BatchHandler = (deliveries: Delivery[], ctx: (d: Delivery) => JobContext) => Promise<Outcome[]>;

const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));

/** Runs a one-job handler over each delivery of a batch, concurrently. */
export function eachDelivery(handle: JobHandler): BatchHandler {
  return (deliveries, ctx) =>
    Promise.all(
      deliveries.map(async (d): Promise<Outcome> => {
        try {
          await handle(d, ctx(d));
          return { ok: true };
        } catch (err) {
          return { ok: false, error: asError(err) };
        }
      }),
    );
}

/** Runs a batch handler; a handler that throws fails every delivery of the batch. */
async function outcomesOf(handle: BatchHandler, deliveries: Delivery[], ctx: (d: Delivery) => JobContext) {
  try {
    return await handle(deliveries, ctx);
  } catch (err) {
    return deliveries.map((): Outcome => ({ ok: false, error: asError(err) }));
  }
}

/**
 * Waits `ms`, or less when `signal` aborts. The abort listener is removed when the wait ends, so
 * a loop that sleeps for as long as the process is idle adds no listeners.
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Polls `name` until `signal` aborts, handing up to `batchSize` jobs at a time to `handle`. */
export async function pollQueue(
  queue: JobQueue,
  name: QueueName,
  handle: BatchHandler,
  opts: {
    log: Logger;
    signal: AbortSignal;
    visibilityTimeoutSeconds: number;
    batchSize?: number;
    idleMs?: number;
    /** How long one receive waits for a job (SQS long polling; default 0, a short poll). */
    waitSeconds?: number;
  },
): Promise<void> {
  const idle = opts.idleMs ?? 500;
  const ctx = (d: Delivery): JobContext => ({ extend: (s) => queue.extend(name, d, s) });
  while (!opts.signal.aborted) {
    let batch: Delivery[] = [];
    try {
      batch = await queue.receive(name, {
        max: opts.batchSize ?? 1,
        visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds,
        waitSeconds: opts.waitSeconds,
        signal: opts.signal,
      });
    } catch (err) {
      opts.log.error("queue receive failed", { queue: name, error: String(err) });
    }
    if (batch.length === 0) {
      await abortableSleep(idle, opts.signal);
      continue;
    }
    const outcomes = await outcomesOf(handle, batch, ctx);
    for (const [i, delivery] of batch.entries()) {
      const outcome = outcomes[i] ?? { ok: false, error: new Error("handler returned no outcome") };
      try {
        if (outcome.ok) {
          await queue.ack(name, delivery);
        } else {
          opts.log.warn("job failed", {
            queue: name,
            jobId: delivery.id,
            attempts: delivery.attempts,
            error: outcome.error.message,
          });
          await queue.fail(name, delivery, outcome.error.message);
        }
      } catch (err) {
        // The queue is unreachable: the lease runs out and the job is delivered again (handlers
        // are idempotent), so the loop carries on instead of stopping for good.
        opts.log.error("queue settle failed", { queue: name, jobId: delivery.id, error: String(err) });
      }
    }
  }
}

/** The parts of an SQS Lambda event a batch handler reads. */
export interface SqsEvent {
  Records: {
    messageId: string;
    receiptHandle: string;
    body: string;
    attributes: { ApproximateReceiveCount: string };
  }[];
}

/**
 * A Lambda handler for SQS batches. Failed records are reported as partial batch failures
 * (`ReportBatchItemFailures`), so SQS redelivers only those and its redrive policy dead-letters them.
 */
export function sqsBatchHandler(handle: BatchHandler, log: Logger) {
  return async (event: SqsEvent) => {
    const batchItemFailures: { itemIdentifier: string }[] = [];
    const deliveries: Delivery[] = [];
    const messageIds: string[] = [];
    for (const record of event.Records) {
      try {
        const envelope = JSON.parse(record.body) as { id: string; body: unknown };
        deliveries.push({
          id: envelope.id,
          body: envelope.body,
          attempts: Number(record.attributes.ApproximateReceiveCount),
          receipt: record.receiptHandle,
        });
        messageIds.push(record.messageId);
      } catch {
        log.warn("message is not a job envelope", { messageId: record.messageId });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    const outcomes = await outcomesOf(handle, deliveries, () => ({ extend: async () => {} }));
    outcomes.forEach((outcome, i) => {
      if (outcome.ok) return;
      log.warn("job failed", {
        messageId: messageIds[i],
        jobId: deliveries[i]?.id,
        error: outcome.error.message,
      });
      batchItemFailures.push({ itemIdentifier: messageIds[i] as string });
    });
    return { batchItemFailures };
  };
}
