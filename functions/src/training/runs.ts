/**
 * Training runs: a training job the platform queued, watched from `queued` to its result.
 * Progress messages (`training_progress`, every few steps) move a run to `running` and extend
 * its curve; the result (`training_result`) finishes it: `succeeded` once the adapter is
 * registered, `failed` with the worker's error or the registry's refusal.
 */
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import { and, desc, eq, inArray, lt, type SQL } from "drizzle-orm";
import { type LoopObjective, type LoopSpace, loopBeta } from "../config.js";
import { CONTRACT_VERSION, type TrainingJob, trainingProgress, trainingResult } from "../contracts/jobs.js";
import { type baseModels, trainingRuns } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { blobKeyFromUri, blobUri } from "../platform/blob/uri.js";
import { registerTrainingResult } from "./registerAdapter.js";

export type TrainingRun = typeof trainingRuns.$inferSelect;
export type Orm = Deps["db"]["orm"];
type Tx = Parameters<Parameters<Orm["transaction"]>[0]>[0];

export const METRICS_FILE = "metrics.jsonl";
/** Most metric rows a run keeps in its curve (the full file stays with the adapter). */
const MAX_CURVE_ROWS = 5000;

/** Where the worker finds the base model to train: a blob URI as is, a local folder as a file URI. */
export function trainingBaseUri(base: typeof baseModels.$inferSelect): string | null {
  const uri = base.diffusersUri;
  if (!uri) return null;
  if (/^(file|s3):\/\//.test(uri)) return uri;
  return pathToFileURL(uri).href;
}

export interface RunPlan {
  roundId: string | null;
  base: typeof baseModels.$inferSelect;
  snapshot: { id: string; blobPrefix: string };
  parent: { id: string; blobPrefix: string } | null;
  objective: LoopObjective;
  space: LoopSpace;
}

/** The run's row and its job message, from the loop's configuration. */
export function planRun(
  deps: Pick<Deps, "config">,
  plan: RunPlan,
): { run: typeof trainingRuns.$inferInsert; job: TrainingJob } {
  const baseUri = trainingBaseUri(plan.base);
  if (!baseUri) throw new Error(`base model ${plan.base.id} has no diffusers model to train on`);
  const { loop, blob } = deps.config;
  const suffix = randomUUID().replaceAll("-", "").slice(0, 12);
  const runId = `run_${suffix}`;
  const adapterId = `${plan.base.id}-${plan.objective}-${plan.space}-${suffix}`.slice(0, 128);
  const jobId = `train_${suffix}`;
  const job: TrainingJob = {
    version: CONTRACT_VERSION,
    id: jobId,
    createdAt: new Date().toISOString(),
    type: "training",
    payload: {
      adapterId,
      baseModelId: plan.base.id,
      baseModelUri: baseUri,
      parentAdapterId: plan.parent?.id ?? null,
      parentAdapterUri: plan.parent ? blobUri(blob, plan.parent.blobPrefix) : null,
      datasetSnapshotId: plan.snapshot.id,
      datasetUri: blobUri(blob, plan.snapshot.blobPrefix),
      outputUri: blobUri(blob, `adapters/${adapterId}/`),
      objective: plan.objective,
      space: plan.space,
      beta: loopBeta(loop.beta, plan.objective, plan.space),
      rank: loop.rank,
      alpha: loop.rank,
      steps: loop.steps,
      learningRate: loop.learningRate,
      batchSize: loop.batchSize,
      gradientAccumulation: 1,
      seed: Number.parseInt(suffix.slice(0, 8), 16),
      extra: { ...loop.trainingOptions },
    },
  };
  const p = job.payload;
  const run = {
    id: runId,
    jobId,
    roundId: plan.roundId,
    baseModelId: plan.base.id,
    adapterId,
    parentAdapterId: p.parentAdapterId,
    snapshotId: plan.snapshot.id,
    objective: p.objective,
    space: p.space,
    hyperParameters: {
      beta: p.beta,
      rank: p.rank,
      alpha: p.alpha,
      steps: p.steps,
      learningRate: p.learningRate,
      batchSize: p.batchSize,
      seed: p.seed,
      data: loop.data,
      options: p.extra,
    },
    status: "queued" as const,
  };
  return { run, job };
}

export async function insertRuns(tx: Tx | Orm, runs: (typeof trainingRuns.$inferInsert)[]): Promise<void> {
  // One millisecond apart, in the order given (LOOP_OBJECTIVES'), so a round's arms keep that order.
  const now = Date.now();
  if (runs.length > 0)
    await tx.insert(trainingRuns).values(runs.map((r, i) => ({ createdAt: new Date(now + i), ...r })));
}

/** Sends the runs' jobs; a job that cannot be queued fails its run (the round then settles). */
export async function sendJobs(deps: Pick<Deps, "db" | "queue" | "log">, jobs: TrainingJob[]): Promise<void> {
  for (const job of jobs) {
    try {
      await deps.queue.send("training", job.id, job);
    } catch (err) {
      deps.log.error("training job not queued", { jobId: job.id, error: String(err) });
      await deps.db.orm
        .update(trainingRuns)
        .set({
          status: "failed",
          error: `the training job could not be queued: ${String(err)}`,
          finishedAt: new Date(),
        })
        .where(eq(trainingRuns.jobId, job.id));
    }
  }
}

/** A progress message: the run is running; its progress and curve are updated. */
export async function applyProgress(db: Deps["db"], body: unknown): Promise<TrainingRun | null> {
  const msg = trainingProgress.parse(body).payload;
  const [run] = await db.orm.select().from(trainingRuns).where(eq(trainingRuns.jobId, msg.trainingJobId));
  if (!run || run.status === "succeeded" || run.status === "failed") return run ?? null;
  const lastStep = run.curve.length > 0 ? (run.curve[run.curve.length - 1]?.step ?? -1) : -1;
  const fresh = msg.metrics.filter((m) => typeof m.step !== "number" || m.step > lastStep);
  const curve = [...run.curve, ...fresh].slice(-MAX_CURVE_ROWS);
  const [updated] = await db.orm
    .update(trainingRuns)
    .set({
      status: "running",
      progress: {
        step: msg.step,
        totalSteps: msg.totalSteps,
        stepsPerSecond: msg.stepsPerSecond,
        etaSeconds: msg.etaSeconds,
        phase: msg.phase,
      },
      curve,
      startedAt: run.startedAt ?? new Date(),
      updatedAt: new Date(),
    })
    .where(and(eq(trainingRuns.id, run.id), inArray(trainingRuns.status, ["queued", "running"])))
    .returning();
  return updated ?? run;
}

/** The metric rows of a published adapter's `metrics.jsonl` (empty when there is none). */
async function publishedCurve(blobs: Deps["blobs"], prefix: string): Promise<Record<string, number>[]> {
  const bytes = await blobs.get(`${prefix}${METRICS_FILE}`);
  if (!bytes) return [];
  const out: Record<string, number>[] = [];
  for (const line of new TextDecoder().decode(bytes).split("\n")) {
    if (!line.trim()) continue;
    try {
      const row = JSON.parse(line) as Record<string, unknown>;
      out.push(
        Object.fromEntries(
          Object.entries(row).filter((e): e is [string, number] => typeof e[1] === "number"),
        ),
      );
    } catch {
      // a torn last line of an interrupted write: skip it
    }
  }
  return out.slice(-MAX_CURVE_ROWS);
}

/**
 * A result message: registers the adapter (validated against its base model) and finishes the
 * run. Results of jobs that no run watches (queued by hand) are registered all the same.
 */
export async function applyResult(
  deps: Pick<Deps, "db" | "blobs" | "config" | "log">,
  body: unknown,
): Promise<{ run: TrainingRun | null; outcome: Awaited<ReturnType<typeof registerTrainingResult>> }> {
  const msg = trainingResult.parse(body).payload;
  const outcome = await registerTrainingResult(deps, body);
  const [run] = await deps.db.orm
    .select()
    .from(trainingRuns)
    .where(eq(trainingRuns.jobId, msg.trainingJobId));
  if (!run) return { run: null, outcome };
  if (run.status === "succeeded" || run.status === "failed") return { run, outcome };
  const ok = outcome.outcome === "registered" || outcome.outcome === "already-registered";
  const error =
    outcome.outcome === "refused"
      ? `adapter refused: ${outcome.reason}`
      : outcome.outcome === "training-failed"
        ? (outcome.error ?? "training failed without a message")
        : null;
  const prefix = msg.adapterUri
    ? blobKeyFromUri(deps.config.blob, msg.adapterUri.endsWith("/") ? msg.adapterUri : `${msg.adapterUri}/`)
    : null;
  const curve = ok && prefix ? await publishedCurve(deps.blobs, prefix) : [];
  const [updated] = await deps.db.orm
    .update(trainingRuns)
    .set({
      status: ok ? "succeeded" : "failed",
      metrics: msg.metrics,
      error,
      ...(curve.length > 0 ? { curve } : {}),
      ...(ok && run.progress
        ? { progress: { ...run.progress, step: run.progress.totalSteps, etaSeconds: 0 } }
        : {}),
      startedAt: run.startedAt ?? run.createdAt,
      finishedAt: new Date(),
      updatedAt: new Date(),
    })
    .where(and(eq(trainingRuns.id, run.id), inArray(trainingRuns.status, ["queued", "running"])))
    .returning();
  return { run: updated ?? run, outcome };
}

export async function findRun(db: Deps["db"], id: string): Promise<TrainingRun | null> {
  const [row] = await db.orm.select().from(trainingRuns).where(eq(trainingRuns.id, id));
  return row ?? null;
}

export async function listRuns(
  db: Deps["db"],
  f: {
    status?: TrainingRun["status"] | undefined;
    roundId?: string | undefined;
    before?: Date | undefined;
    limit: number;
  },
): Promise<TrainingRun[]> {
  const where: SQL[] = [];
  if (f.status) where.push(eq(trainingRuns.status, f.status));
  if (f.roundId) where.push(eq(trainingRuns.roundId, f.roundId));
  if (f.before) where.push(lt(trainingRuns.createdAt, f.before));
  return db.orm
    .select()
    .from(trainingRuns)
    .where(where.length > 0 ? and(...where) : undefined)
    .orderBy(desc(trainingRuns.createdAt), desc(trainingRuns.id))
    .limit(f.limit);
}
