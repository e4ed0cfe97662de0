import type { QueueName } from "../../config.js";

export type { QueueName };

/** One delivery of a job. `receipt` identifies this lease; a re-delivery gets a new one. */
export interface Delivery<T = unknown> {
  id: string;
  body: T;
  /** How many times the job has been delivered, this delivery included. */
  attempts: number;
  receipt: string;
}

export interface DeadLetter {
  id: string;
  body: unknown;
  attempts: number;
  error: string | null;
}

export interface QueueStats {
  ready: number;
  inFlight: number;
  dead: number;
}

/**
 * The job queue port. Delivery is at least once: a leased job is invisible to other consumers
 * until its visibility timeout expires, then it is delivered again; after `maxAttempts`
 * deliveries without an ack it goes to the dead letters. Consumers are idempotent on `id`.
 */
export interface JobQueue {
  readonly kind: "pg" | "sqs";
  /** Enqueues a job. Sending an id the queue already holds is a no-op where the backend can tell. */
  send(queue: QueueName, id: string, body: unknown, opts?: { delaySeconds?: number }): Promise<void>;
  receive(
    queue: QueueName,
    opts: {
      max?: number;
      visibilityTimeoutSeconds: number;
      waitSeconds?: number;
      /** Ends a waiting receive early, with no deliveries (a consumer shutting down). */
      signal?: AbortSignal;
    },
  ): Promise<Delivery[]>;
  /** Marks the job done. Acknowledging twice, or after the lease was lost, is harmless. */
  ack(queue: QueueName, delivery: Delivery): Promise<void>;
  /** Gives the job back for a retry after a backoff, or to the dead letters when attempts are used up. */
  fail(queue: QueueName, delivery: Delivery, error: string): Promise<void>;
  /** Extends the lease of a long-running job. */
  extend(queue: QueueName, delivery: Delivery, visibilityTimeoutSeconds: number): Promise<void>;
  deadLetters(queue: QueueName, max?: number): Promise<DeadLetter[]>;
  stats(queue: QueueName): Promise<QueueStats>;
  ping(): Promise<void>;
}

/** Exponential backoff for retries: 5 s, 10 s, 20 s … capped at 5 minutes. */
export function retryBackoffSeconds(attempts: number, baseSeconds = 5, capSeconds = 300): number {
  return Math.min(capSeconds, baseSeconds * 2 ** Math.max(0, attempts - 1));
}
