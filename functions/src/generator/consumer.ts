/**
 * Running the generator over the `generation` queue: a poll loop for the local process and an
 * SQS batch handler for Lambda (partial batch failures), both over `handleGenerationBatch`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import type { Config } from "../config.js";
import { adapters } from "../db/schema.js";
import type { AdapterRecord } from "../inference/adapters.js";
import { InferenceService } from "../inference/service.js";
import type { Db } from "../platform/db/index.js";
import { type BatchHandler, type Outcome, pollQueue, sqsBatchHandler } from "../platform/queue/consumer.js";
import type { JobQueue } from "../platform/queue/port.js";
import {
  type BackendProvider,
  backendProvider,
  type GeneratorDeps,
  handleGenerationBatch,
} from "./generator.js";

/** Reads an adapter's blob prefix, rank and alpha from the `adapters` table. */
export function adapterLookup(db: Db) {
  return async (adapterId: string): Promise<AdapterRecord | null> => {
    const [row] = await db.orm
      .select({
        id: adapters.id,
        baseModelId: adapters.baseModelId,
        blobPrefix: adapters.blobPrefix,
        rank: adapters.rank,
        alpha: adapters.alpha,
      })
      .from(adapters)
      .where(eq(adapters.id, adapterId));
    return row ?? null;
  };
}

/**
 * The generator's backends, built from the configuration (one loaded model at a time). Each model
 * load logs once which execution provider it runs on (a warning when `cuda` fell back to `cpu`).
 */
export function generatorBackends(
  deps: GeneratorDeps,
  config: Pick<Config, "inference">,
  overrides: { workers?: number } = {},
): BackendProvider & { close(): Promise<void> } {
  const inf = config.inference;
  return backendProvider(
    deps,
    async (baseModelId, source) => {
      const service = await InferenceService.create({
        baseModelId,
        modelSource: source,
        modelCacheDir: inf.modelCacheDir,
        workers: overrides.workers ?? inf.workers,
        intraOpThreads: inf.intraOpThreads,
        executionProvider: inf.executionProvider,
        adapterCacheBytes: inf.adapterCacheBytes,
        blobs: deps.blobs,
        lookupAdapter: adapterLookup(deps.db),
      });
      const { requested, provider, fallbackReason } = service.executionProvider;
      const fields = { baseModelId, requested, provider, reason: fallbackReason };
      if (fallbackReason) deps.log.warn("inference execution provider: falling back", fields);
      else deps.log.info("inference execution provider", fields);
      return service;
    },
    inf.modelDir,
  );
}

/** The generator as a batch handler: a pair's two jobs render together; "retry" outcomes go back. */
export function generationBatchHandler(deps: GeneratorDeps, backends: BackendProvider): BatchHandler {
  return async (deliveries) => {
    const outcomes = await handleGenerationBatch(deps, backends, deliveries);
    return outcomes.map(
      (o): Outcome => (o.status === "retry" ? { ok: false, error: o.error } : { ok: true }),
    );
  };
}

/**
 * Polls the `generation` queue until `signal` aborts. Takes up to `batchSize` jobs at a time so
 * the two jobs of a pair are rendered together.
 */
export function pollGenerations(
  deps: GeneratorDeps & { queue: JobQueue },
  backends: BackendProvider,
  opts: {
    signal: AbortSignal;
    batchSize?: number;
    visibilityTimeoutSeconds?: number;
    idleMs?: number;
    waitSeconds?: number;
  },
): Promise<void> {
  return pollQueue(deps.queue, "generation", generationBatchHandler(deps, backends), {
    log: deps.log,
    signal: opts.signal,
    batchSize: opts.batchSize ?? 2,
    visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds ?? 600,
    idleMs: opts.idleMs,
    waitSeconds: opts.waitSeconds,
  });
}

/** The generation queue's redrive `maxReceiveCount` in the CDK app (stacks/src/queues-stack.ts). */
export const SQS_GENERATION_MAX_RECEIVES = 3;

/**
 * A Lambda handler for SQS batches of generation jobs, reporting partial batch failures. The
 * last receive before the redrive policy dead-letters a job marks its generation failed.
 */
export function generationSqsHandler(deps: GeneratorDeps, backends: BackendProvider) {
  const withLimit = { ...deps, maxAttempts: deps.maxAttempts ?? SQS_GENERATION_MAX_RECEIVES };
  return sqsBatchHandler(generationBatchHandler(withLimit, backends), deps.log);
}

/**
 * Starts the generator in this process (the Node server; the GPU generator service): the
 * configured model's backends and one poll loop per inference worker (each takes up to two jobs,
 * a pair, at a time; `waitSeconds` long-polls SQS). Returns a stop function that lets the loops
 * finish the jobs in hand.
 */
export function startLocalGenerator(
  deps: GeneratorDeps & {
    queue: JobQueue;
    config: Pick<Config, "inference"> & Partial<Pick<Config, "queue">>;
  },
  opts: { waitSeconds?: number } = {},
): () => Promise<void> {
  const source = deps.config.inference.modelDir;
  if (!source.startsWith("blob:") && !existsSync(join(source, "manifest.json"))) {
    deps.log.warn("generator not started: no exported model", { modelDir: source });
    return async () => {};
  }
  const backends = generatorBackends(deps, deps.config);
  const controller = new AbortController();
  const queue = deps.config.queue;
  const withLimit = { ...deps, maxAttempts: queue?.backend === "pg" ? queue.maxAttempts : deps.maxAttempts };
  const loops = Array.from({ length: Math.max(1, deps.config.inference.workers) }, () =>
    pollGenerations(withLimit, backends, {
      signal: controller.signal,
      batchSize: 2,
      waitSeconds: opts.waitSeconds,
    }),
  );
  return async () => {
    controller.abort();
    await Promise.all(loops);
    await backends.close();
  };
}
