/**
 * The `generation` jobs of pair generations, and the sweep that keeps them from getting stuck.
 *
 * A generation row is written (status `queued`) in the same transaction as its pair; its job is
 * sent after the commit (job id = generation id; the generator is idempotent on it). A crash
 * between commit and send, a job that the queue lost or dead-lettered, or a generator that died
 * mid-render would leave the row `queued`/`running` forever and its pair "still generating". The
 * sweep fixes that from the rows alone, whatever the queue backend:
 * - a generation with no progress (`updated_at`) for longer than a lease gets its job sent again
 *   (a no-op on the Postgres queue while it still holds the job; on SQS a duplicate delivery,
 *   which the generator skips once the generation has succeeded);
 * - a generation still unfinished long after it was created is marked `failed` with the reason,
 *   so its pair leaves the pool instead of counting as depth.
 */
import { sql } from "drizzle-orm";
import { type GenerationJob, generationJob } from "../contracts/jobs.js";
import type { Db } from "../platform/db/port.js";
import { rows } from "../platform/db/rows.js";
import type { Logger } from "../platform/log.js";
import type { JobQueue } from "../platform/queue/port.js";

/** The fields of a generation row its job is built from. */
export interface GenerationRow {
  id: string;
  baseModelId: string;
  adapterId: string | null;
  adapterStrength?: number;
  seed: string | number;
  sampler: string;
  steps: number;
  guidance: number;
  width: number;
  height: number;
}

/** The job that renders a generation (its id is the generation id). */
export function generationJobFor(
  g: GenerationRow,
  prompt: string,
  pairId: string | null,
  createdAt = new Date().toISOString(),
): GenerationJob {
  return generationJob.parse({
    version: 1,
    id: g.id,
    createdAt,
    type: "generation",
    payload: {
      generationId: g.id,
      baseModelId: g.baseModelId,
      adapterId: g.adapterId,
      adapterStrength: g.adapterStrength ?? 1,
      prompt,
      negativePrompt: "",
      seed: Number(g.seed),
      sampler: g.sampler,
      steps: g.steps,
      guidance: g.guidance,
      width: g.width,
      height: g.height,
      pairId,
    },
  });
}

export async function sendGenerationJobs(queue: JobQueue, jobs: readonly GenerationJob[]): Promise<void> {
  for (const job of jobs) await queue.send("generation", job.id, job);
}

export interface SweepOptions {
  /** A generation without progress for this long has its job sent again. */
  leaseSeconds: number;
  /** A generation unfinished this long after it was created is marked failed. */
  giveUpSeconds: number;
  /** Most jobs re-sent by one sweep. */
  max?: number;
}

export interface SweepResult {
  resent: number;
  failed: number;
}

interface StuckRow {
  id: string;
  base_model_id: string;
  adapter_id: string | null;
  adapter_strength: number;
  seed: string;
  sampler: string;
  steps: number;
  guidance: number;
  width: number;
  height: number;
  text: string;
  pair_id: string | null;
}

/** One sweep over unfinished generations: fail the hopeless ones, re-send the ones without progress. */
export async function sweepStuckGenerations(
  deps: { db: Db; queue: JobQueue; log: Logger },
  opts: SweepOptions,
): Promise<SweepResult> {
  const orm = deps.db.orm;
  const failed = await rows<{ id: string }>(
    orm,
    sql`update generations set status = 'failed', updated_at = now(), finished_at = now(),
          error = coalesce(error || '; ', '') || ${`no image ${opts.giveUpSeconds} s after it was queued: given up`}
        where status in ('queued', 'running')
          and created_at < now() - ${opts.giveUpSeconds} * interval '1 second'
        returning id`,
  );
  const stuck = await rows<StuckRow>(
    orm,
    sql`with stuck as (
          select id from generations
          where status in ('queued', 'running')
            and updated_at < now() - ${opts.leaseSeconds} * interval '1 second'
          order by updated_at limit ${opts.max ?? 200}
          for update skip locked
        ), touched as (
          update generations g set updated_at = now() from stuck where g.id = stuck.id
          returning g.*
        )
        select t.id, t.base_model_id, t.adapter_id, t.adapter_strength, t.seed, t.sampler, t.steps,
          t.guidance, t.width, t.height, pr.text,
          (select p.id from pairs p where p.generation_a_id = t.id or p.generation_b_id = t.id limit 1) as pair_id
        from touched t join prompts pr on pr.id = t.prompt_id`,
  );
  const jobs = stuck.map((r) =>
    generationJobFor(
      {
        id: r.id,
        baseModelId: r.base_model_id,
        adapterId: r.adapter_id,
        adapterStrength: Number(r.adapter_strength),
        seed: r.seed,
        sampler: r.sampler,
        steps: Number(r.steps),
        guidance: Number(r.guidance),
        width: Number(r.width),
        height: Number(r.height),
      },
      r.text,
      r.pair_id,
    ),
  );
  await sendGenerationJobs(deps.queue, jobs);
  if (failed.length > 0 || jobs.length > 0) {
    deps.log.warn("stuck generations swept", { resent: jobs.length, failed: failed.length });
  }
  return { resent: jobs.length, failed: failed.length };
}
