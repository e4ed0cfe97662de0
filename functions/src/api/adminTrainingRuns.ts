/**
 * Training runs for admins: every training job the platform queued, watched from `queued` to
 * its result, with progress (step of total, rate, ETA) while it runs, the metric curve, timings
 * and the error of a failed run (`functions/src/training/runs.ts`).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { inArray } from "drizzle-orm";
import { adapters, trainingRunStatus } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { findRun, listRuns, type TrainingRun } from "../training/runs.js";
import { adminSecurity } from "./adminSession.js";
import { adminErrors, err, json } from "./routeDocs.js";
import type { VoterEnv } from "./voterSession.js";

export const TrainingRunSchema = z
  .object({
    id: z.string(),
    jobId: z.string(),
    roundId: z.string().nullable(),
    baseModelId: z.string(),
    adapterId: z.string().openapi({ description: "The id the published adapter carries" }),
    adapterRegistered: z.boolean(),
    parentAdapterId: z.string().nullable(),
    snapshotId: z.string().nullable(),
    objective: z.string(),
    space: z.string(),
    hyperParameters: z.record(z.string(), z.unknown()),
    status: z.enum(trainingRunStatus),
    progress: z
      .object({
        step: z.number(),
        totalSteps: z.number(),
        fraction: z.number(),
        stepsPerSecond: z.number().nullable(),
        etaSeconds: z.number().nullable(),
        phase: z.string().optional(),
      })
      .nullable(),
    curve: z.array(z.record(z.string(), z.number())).openapi({
      description:
        "Metric rows as the worker logs them (metrics.jsonl): step, loss, implicit accuracy, held-out",
    }),
    metrics: z.record(z.string(), z.number()),
    error: z.string().nullable(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    updatedAt: z.string(),
    durationSeconds: z.number().nullable(),
  })
  .openapi("TrainingRun");

export const runJson = (r: TrainingRun, registered: boolean) => ({
  id: r.id,
  jobId: r.jobId,
  roundId: r.roundId,
  baseModelId: r.baseModelId,
  adapterId: r.adapterId,
  adapterRegistered: registered,
  parentAdapterId: r.parentAdapterId,
  snapshotId: r.snapshotId,
  objective: r.objective,
  space: r.space,
  hyperParameters: r.hyperParameters,
  status: r.status,
  progress: r.progress
    ? { ...r.progress, fraction: r.progress.totalSteps > 0 ? r.progress.step / r.progress.totalSteps : 0 }
    : null,
  curve: r.curve,
  metrics: r.metrics,
  error: r.error,
  createdAt: r.createdAt.toISOString(),
  startedAt: r.startedAt?.toISOString() ?? null,
  finishedAt: r.finishedAt?.toISOString() ?? null,
  updatedAt: r.updatedAt.toISOString(),
  durationSeconds:
    r.startedAt && r.finishedAt ? (r.finishedAt.getTime() - r.startedAt.getTime()) / 1000 : null,
});

const listRoute = createRoute({
  method: "get",
  path: "/api/admin/training-runs",
  tags: ["training"],
  summary: "Training runs, newest first (filter by status or loop round; page with `before`)",
  security: adminSecurity,
  request: {
    query: z.object({
      status: z.enum(trainingRunStatus).optional(),
      roundId: z.string().max(128).optional(),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      before: z.iso.datetime({ offset: true }).optional(),
    }),
  },
  responses: { 200: json(z.object({ runs: z.array(TrainingRunSchema) }), "Training runs"), ...adminErrors },
});

const getRoute = createRoute({
  method: "get",
  path: "/api/admin/training-runs/{id}",
  tags: ["training"],
  summary: "One training run: status, progress and ETA while it runs, curve, metrics, timings, error",
  security: adminSecurity,
  request: {
    params: z.object({
      id: z
        .string()
        .max(128)
        .openapi({ param: { name: "id", in: "path" } }),
    }),
  },
  responses: { 200: json(TrainingRunSchema, "The run"), 404: err("No such run"), ...adminErrors },
});

export function registerAdminTrainingRunRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  const registered = async (runs: TrainingRun[]) => {
    if (runs.length === 0) return new Set<string>();
    const ids = runs.map((r) => r.adapterId);
    const rows = await deps.db.orm
      .select({ id: adapters.id })
      .from(adapters)
      .where(inArray(adapters.id, ids));
    return new Set(rows.map((r) => r.id));
  };

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const runs = await listRuns(deps.db, {
      status: q.status,
      roundId: q.roundId,
      limit: q.limit,
      before: q.before ? new Date(q.before) : undefined,
    });
    const known = await registered(runs);
    return c.json({ runs: runs.map((r) => runJson(r, known.has(r.adapterId))) }, 200);
  });

  app.openapi(getRoute, async (c) => {
    const run = await findRun(deps.db, c.req.valid("param").id);
    if (!run) throw new ApiError(404, "training_run_not_found", "There is no such training run.");
    const known = await registered([run]);
    return c.json(runJson(run, known.has(run.adapterId)), 200);
  });
}
