/**
 * The admin playground: one prompt, one seed, two models (the base or an adapter each) rendered
 * side by side through the same generation queue as the pool's pairs. A run is a prompt row
 * (`source = 'playground'`, in no prompt set, so it never reaches voters) and two generation rows
 * whose ids derive from the run id, so polling needs no table of its own.
 */
import { randomUUID } from "node:crypto";
import { and, eq, inArray, sql } from "drizzle-orm";
import { generationJob } from "../contracts/jobs.js";
import { adapters, baseModels, generations, prompts } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { POOL_GENERATION_DEFAULTS } from "../voting/pairPool.js";

export type Side = "left" | "right";
const SIDES: Side[] = ["left", "right"];
const RUN_ID = /^[0-9a-f-]{36}$/;

export interface PlaygroundRequest {
  prompt: string;
  left: string | null;
  right: string | null;
  seed: number;
}

export interface PlaygroundImage {
  adapterId: string | null;
  status: "queued" | "running" | "succeeded" | "failed";
  url: string | null;
  error: string | null;
  latencyMs: number | null;
}

export interface PlaygroundRun {
  id: string;
  prompt: string;
  seed: number;
  baseModelId: string;
  done: boolean;
  left: PlaygroundImage;
  right: PlaygroundImage;
}

const generationId = (runId: string, side: Side) => `gen_play_${runId}_${side}`;

/** The newest registered base model, which serves the pool too. */
async function baseModel(deps: Deps): Promise<{ id: string; width: number; height: number }> {
  const [m] = await deps.db.orm
    .select({ id: baseModels.id, width: baseModels.width, height: baseModels.height })
    .from(baseModels)
    .orderBy(sql`${baseModels.createdAt} desc`, baseModels.id)
    .limit(1);
  if (!m) throw new ApiError(409, "no_base_model", "No base model is registered yet.");
  return m;
}

/** Queues the two generations of a playground run; returns its id. */
export async function startPlayground(deps: Deps, req: PlaygroundRequest): Promise<string> {
  const model = await baseModel(deps);
  const wanted = [...new Set([req.left, req.right].filter((a): a is string => a !== null))];
  if (wanted.length > 0) {
    const found = await deps.db.orm
      .select({ id: adapters.id })
      .from(adapters)
      .where(and(inArray(adapters.id, wanted), eq(adapters.baseModelId, model.id)));
    const missing = wanted.filter((w) => !found.some((f) => f.id === w));
    if (missing.length > 0) {
      throw new ApiError(404, "adapter_not_found", `There is no adapter ${missing[0]} on ${model.id}.`);
    }
  }
  const runId = randomUUID();
  const promptId = `pr_play_${runId}`;
  const rows = SIDES.map((side) => ({
    id: generationId(runId, side),
    promptId,
    baseModelId: model.id,
    adapterId: req[side],
    seed: String(req.seed),
    ...POOL_GENERATION_DEFAULTS,
    width: model.width,
    height: model.height,
    status: "queued" as const,
    jobId: generationId(runId, side),
  }));
  await deps.db.orm.transaction(async (tx) => {
    await tx
      .insert(prompts)
      .values({ id: promptId, promptSetId: null, text: req.prompt, source: "playground" });
    await tx.insert(generations).values(rows);
  });
  const createdAt = new Date().toISOString();
  for (const r of rows) {
    const job = generationJob.parse({
      version: 1,
      id: r.id,
      createdAt,
      type: "generation",
      payload: {
        generationId: r.id,
        baseModelId: r.baseModelId,
        adapterId: r.adapterId,
        adapterStrength: 1,
        prompt: req.prompt,
        negativePrompt: "",
        seed: req.seed,
        sampler: r.sampler,
        steps: r.steps,
        guidance: r.guidance,
        width: r.width,
        height: r.height,
        pairId: null,
      },
    });
    await deps.queue.send("generation", job.id, job);
  }
  return runId;
}

/** A run's state: each side's status, and a signed URL once its image is there. */
export async function playgroundRun(deps: Deps, runId: string): Promise<PlaygroundRun | null> {
  if (!RUN_ID.test(runId)) return null;
  const found = await deps.db.orm
    .select({
      id: generations.id,
      adapterId: generations.adapterId,
      status: generations.status,
      blobKey: generations.blobKey,
      error: generations.error,
      latencyMs: generations.latencyMs,
      seed: generations.seed,
      baseModelId: generations.baseModelId,
      prompt: prompts.text,
    })
    .from(generations)
    .innerJoin(prompts, eq(prompts.id, generations.promptId))
    .where(
      inArray(
        generations.id,
        SIDES.map((s) => generationId(runId, s)),
      ),
    );
  const [left, right] = SIDES.map((s) => found.find((g) => g.id === generationId(runId, s)));
  if (!left || !right) return null;
  const image = async (g: typeof left): Promise<PlaygroundImage> => ({
    adapterId: g.adapterId,
    status: g.status,
    url: g.status === "succeeded" && g.blobKey ? await deps.blobs.signedUrl(g.blobKey) : null,
    error: g.error,
    latencyMs: g.latencyMs,
  });
  const [l, r] = await Promise.all([image(left), image(right)]);
  const finished = (s: string) => s === "succeeded" || s === "failed";
  return {
    id: runId,
    prompt: left.prompt,
    seed: Number(left.seed),
    baseModelId: left.baseModelId,
    done: finished(l.status) && finished(r.status),
    left: l,
    right: r,
  };
}
