/**
 * The generator: consumes `generation` jobs, renders the images, writes them to the blob store
 * and records the outcome on the `generations` row (blob key, latency, status, error).
 *
 * - Idempotent on the job id: a generation that already succeeded is skipped; the image key is a
 *   function of the generation id, so a redelivered job overwrites the same object.
 * - The two jobs of a pair that arrive together are rendered in one request (their UNet passes
 *   batched when they share an adapter stack).
 * - Errors that retrying cannot fix (unknown adapter, adapter that does not fit the base model,
 *   NaN/Inf latents, a size the model was not exported for) mark the generation failed and
 *   acknowledge the job; anything else is thrown back to the queue for a retry, and on the last
 *   attempt (`maxAttempts`) marks the generation failed with its error, so that no generation is
 *   left waiting for a job that the queue has dead-lettered.
 * - The degraded side of a gold pair (`degradation` on its row) is rendered like its clean partner
 *   (same prompt, seed and settings, in the same batch) and then degraded (`degrade.ts`).
 * The same code runs in the local process (`pollGenerations`) and in the SQS Lambda handler.
 */
import { eq } from "drizzle-orm";
import { type GenerationJob, generationJob } from "../contracts/jobs.js";
import { baseModels, generations } from "../db/schema.js";
import type { Degradation } from "../domain/pairing.js";
import { AdapterNotFoundError } from "../inference/adapters.js";
import { AdapterMismatchError } from "../inference/lora.js";
import { NonFiniteError } from "../inference/pipeline.js";
import { type InferenceBackend, InvalidGenerationError } from "../inference/service.js";
import type { BlobStore } from "../platform/blob/port.js";
import type { Db } from "../platform/db/index.js";
import type { Logger } from "../platform/log.js";
import type { Delivery } from "../platform/queue/port.js";
import { degradeImage } from "./degrade.js";

export interface GeneratorDeps {
  db: Db;
  blobs: BlobStore;
  log: Logger;
  /**
   * Deliveries a job gets before the queue dead-letters it (`QUEUE_MAX_ATTEMPTS`, or the SQS
   * redrive policy's maxReceiveCount); the last one marks a still failing generation failed.
   * Unset: never (the pool's sweep gives up on it later).
   */
  maxAttempts?: number;
}

/** Gives the inference backend for a base model (loading it on first use). */
export type BackendProvider = (baseModelId: string) => Promise<InferenceBackend>;

/** Where a generation's image lives in the blob store. */
export function generationImageKey(generationId: string): string {
  return `images/generations/${generationId}.png`;
}

/**
 * Errors that a retry would only repeat. A model that cannot be loaded is not one of them: that
 * is the deployment's problem, so those jobs are retried (and end in the dead letters).
 */
export function isPermanent(err: unknown): boolean {
  return (
    err instanceof AdapterNotFoundError ||
    err instanceof AdapterMismatchError ||
    err instanceof NonFiniteError ||
    err instanceof InvalidGenerationError
  );
}

export type DeliveryOutcome =
  | { status: "succeeded"; generationId: string }
  | { status: "skipped"; generationId: string; reason: string }
  | { status: "failed"; generationId: string; error: string }
  | { status: "retry"; error: Error };

function paramsKey(job: GenerationJob): string {
  const p = job.payload;
  return JSON.stringify([
    p.baseModelId,
    p.sampler,
    p.steps,
    p.guidance,
    p.width,
    p.height,
    p.pairId ?? job.id,
  ]);
}

async function setRow(db: Db, id: string, values: Partial<typeof generations.$inferInsert>): Promise<void> {
  await db.orm
    .update(generations)
    .set({ ...values, updatedAt: new Date() })
    .where(eq(generations.id, id));
}

interface PendingJob {
  index: number;
  job: GenerationJob;
  degradation: Degradation | null;
  attempts: number;
}

/**
 * Handles a batch of deliveries; returns one outcome per delivery, in order. "retry" outcomes
 * must be given back to the queue (thrown / reported as batch item failures); all others acked.
 */
export async function handleGenerationBatch(
  deps: GeneratorDeps,
  backendFor: BackendProvider,
  deliveries: readonly Delivery[],
): Promise<DeliveryOutcome[]> {
  const outcomes: DeliveryOutcome[] = new Array(deliveries.length);
  const pending: PendingJob[] = [];
  for (const [index, delivery] of deliveries.entries()) {
    const parsed = generationJob.safeParse(delivery.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      outcomes[index] = {
        status: "retry",
        error: new Error(`invalid generation job ${delivery.id}: ${issue?.path.join(".")} ${issue?.message}`),
      };
      continue;
    }
    const job = parsed.data;
    const [row] = await deps.db.orm
      .select({ status: generations.status, degradation: generations.degradation })
      .from(generations)
      .where(eq(generations.id, job.payload.generationId));
    if (!row) {
      outcomes[index] = {
        status: "retry",
        error: new Error(`generation ${job.payload.generationId} does not exist`),
      };
    } else if (row.status === "succeeded" || row.status === "failed") {
      outcomes[index] = {
        status: "skipped",
        generationId: job.payload.generationId,
        reason: `already ${row.status}`,
      };
    } else {
      const degradation = row.degradation as Degradation | null;
      pending.push({ index, job, degradation, attempts: delivery.attempts });
    }
  }
  const groups = new Map<string, PendingJob[]>();
  for (const item of pending) {
    const key = paramsKey(item.job);
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  for (const group of groups.values()) {
    const results = await renderGroup(deps, backendFor, group);
    for (const [i, g] of group.entries()) {
      outcomes[g.index] = await settleLastAttempt(deps, g, results[i] as DeliveryOutcome);
    }
  }
  return outcomes;
}

/** A retry on the job's last attempt: the generation is marked failed with its error and the job acked. */
async function settleLastAttempt(
  deps: GeneratorDeps,
  item: PendingJob,
  outcome: DeliveryOutcome,
): Promise<DeliveryOutcome> {
  if (outcome.status !== "retry" || deps.maxAttempts === undefined || item.attempts < deps.maxAttempts) {
    return outcome;
  }
  const generationId = item.job.payload.generationId;
  const error = `gave up after ${item.attempts} attempts: ${outcome.error.message}`;
  await setRow(deps.db, generationId, { status: "failed", error, finishedAt: new Date() });
  deps.log.warn("generation failed", { generationId, jobId: item.job.id, error });
  return { status: "failed", generationId, error };
}

async function renderGroup(
  deps: GeneratorDeps,
  backendFor: BackendProvider,
  items: PendingJob[],
): Promise<DeliveryOutcome[]> {
  const jobs = items.map((g) => g.job);
  const first = (jobs[0] as GenerationJob).payload;
  const started = performance.now();
  for (const job of jobs)
    await setRow(deps.db, job.payload.generationId, { status: "running", jobId: job.id, error: null });
  try {
    const backend = await backendFor(first.baseModelId);
    const { images, timings } = await backend.generate(
      jobs.map((j) => ({
        prompt: j.payload.prompt,
        negativePrompt: j.payload.negativePrompt,
        seed: j.payload.seed,
        adapters: j.payload.adapterId
          ? [{ adapterId: j.payload.adapterId, strength: j.payload.adapterStrength }]
          : [],
      })),
      {
        sampler: first.sampler,
        steps: first.steps,
        guidance: first.guidance,
        width: first.width,
        height: first.height,
      },
    );
    const outcomes: DeliveryOutcome[] = [];
    for (const [i, job] of jobs.entries()) {
      const image = images[i];
      if (!image) throw new Error(`backend returned ${images.length} images for ${jobs.length} jobs`);
      const key = generationImageKey(job.payload.generationId);
      const degradation = items[i]?.degradation ?? null;
      const bytes = degradation
        ? await degradeImage(image.bytes, degradation, job.payload.generationId)
        : image.bytes;
      await deps.blobs.put(key, bytes, { contentType: degradation ? "image/png" : image.contentType });
      const latencyMs = Math.round(performance.now() - started);
      await setRow(deps.db, job.payload.generationId, {
        status: "succeeded",
        blobKey: key,
        latencyMs,
        error: null,
        finishedAt: new Date(),
      });
      deps.log.info("generation succeeded", {
        generationId: job.payload.generationId,
        jobId: job.id,
        pairId: job.payload.pairId,
        batched: jobs.length,
        latencyMs,
        unetMs: Math.round(timings.unetMs),
        provider: backend.executionProvider?.provider,
      });
      outcomes.push({ status: "succeeded", generationId: job.payload.generationId });
    }
    return outcomes;
  } catch (err) {
    if (jobs.length > 1 && isPermanent(err)) {
      // Render the jobs one by one, so that one bad adapter or NaN does not fail its pair partner.
      const outcomes: DeliveryOutcome[] = [];
      for (const item of items) outcomes.push(...(await renderGroup(deps, backendFor, [item])));
      return outcomes;
    }
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    const job = jobs[0] as GenerationJob;
    if (isPermanent(err)) {
      await setRow(deps.db, job.payload.generationId, {
        status: "failed",
        error: message,
        finishedAt: new Date(),
      });
      deps.log.warn("generation failed", {
        generationId: job.payload.generationId,
        jobId: job.id,
        error: message,
      });
      return [{ status: "failed", generationId: job.payload.generationId, error: message }];
    }
    // back to queued until the queue redelivers it; the error says why it is being retried
    for (const g of items) {
      const attempt = deps.maxAttempts
        ? `attempt ${g.attempts} of ${deps.maxAttempts}`
        : `attempt ${g.attempts}`;
      await setRow(deps.db, g.job.payload.generationId, {
        status: "queued",
        error: `${attempt}: ${message}`,
      });
    }
    const error = err instanceof Error ? err : new Error(message);
    return jobs.map(() => ({ status: "retry", error }));
  }
}

/**
 * Backends by base model, one loaded at a time (a generator serves one model; switching closes
 * the previous one). The model comes from the base model's `onnx_uri` when set, else `defaultSource`.
 */
export function backendProvider(
  deps: GeneratorDeps,
  create: (baseModelId: string, source: string) => Promise<InferenceBackend>,
  defaultSource: string,
): BackendProvider & { close(): Promise<void> } {
  let current: { id: string; backend: Promise<InferenceBackend> } | null = null;
  const provider = async (baseModelId: string) => {
    if (current?.id === baseModelId) return current.backend;
    const [row] = await deps.db.orm
      .select({ onnxUri: baseModels.onnxUri })
      .from(baseModels)
      .where(eq(baseModels.id, baseModelId));
    if (!row) throw new InvalidGenerationError(`base model ${baseModelId} does not exist`);
    const previous = current;
    const source = modelSource(row.onnxUri, defaultSource);
    current = { id: baseModelId, backend: create(baseModelId, source) };
    current.backend.catch(() => {
      if (current?.id === baseModelId) current = null;
    });
    if (previous) await (await previous.backend.catch(() => null))?.close();
    return current.backend;
  };
  return Object.assign(provider, {
    close: async () => {
      const c = current;
      current = null;
      if (c) await (await c.backend.catch(() => null))?.close();
    },
  });
}

/** `file:///abs/dir` → the folder; `s3://bucket/prefix` → `blob:prefix` (the platform's bucket); else as is. */
export function modelSource(onnxUri: string | null, fallback: string): string {
  if (!onnxUri) return fallback;
  if (onnxUri.startsWith("file://")) return decodeURIComponent(new URL(onnxUri).pathname);
  if (onnxUri.startsWith("s3://")) return `blob:${onnxUri.replace(/^s3:\/\/[^/]+\//, "")}`;
  return onnxUri;
}
