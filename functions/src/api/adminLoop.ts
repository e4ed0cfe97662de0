/**
 * The loop for admins: its settings and rounds (snapshot → training runs → experiment), and a
 * tick run now instead of waiting for the timer (`functions/src/loop`).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { findRound, type LoopRound, listRounds } from "../loop/rounds.js";
import { loopStatus } from "../loop/status.js";
import { loopTick } from "../loop/tick.js";
import { listRuns } from "../training/runs.js";
import { adminSecurity } from "./adminSession.js";
import { adminErrors, err, json } from "./routeDocs.js";
import type { VoterEnv } from "./voterSession.js";

const RoundSchema = z
  .object({
    id: z.string(),
    baseModelId: z.string(),
    status: z.enum(["training", "experimenting", "done", "failed"]),
    snapshotId: z.string().nullable(),
    parentAdapterId: z.string().nullable(),
    experimentId: z.string().nullable(),
    note: z.string().nullable(),
    trainingRunIds: z.array(z.string()),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .openapi("LoopRound");

const roundJson = (r: LoopRound, runIds: string[]) => ({
  id: r.id,
  baseModelId: r.baseModelId,
  status: r.status,
  snapshotId: r.snapshotId,
  parentAdapterId: r.parentAdapterId,
  experimentId: r.experimentId,
  note: r.note,
  trainingRunIds: runIds,
  createdAt: r.createdAt.toISOString(),
  finishedAt: r.finishedAt?.toISOString() ?? null,
});

const IntervalNow = z.object({
  arm: z.string(),
  n: z.number().int(),
  estimate: z.number(),
  lower: z.number(),
  upper: z.number(),
  state: z.string().nullable(),
});

const BaseModelLoopSchema = z
  .object({
    baseModelId: z.string(),
    champion: z
      .object({
        adapterId: z.string(),
        objective: z.string().nullable(),
        space: z.string().nullable(),
        datasetSnapshotId: z.string().nullable(),
        promotedAt: z.string().nullable(),
      })
      .nullable()
      .openapi({ description: "null: the base model alone is the champion" }),
    usableVotesSinceChampionSnapshot: z.number().int(),
    activeRound: z
      .object({
        id: z.string(),
        status: z.string(),
        snapshotId: z.string().nullable(),
        note: z.string().nullable(),
        createdAt: z.string(),
        runs: z.array(
          z.object({
            id: z.string(),
            adapterId: z.string(),
            objective: z.string(),
            space: z.string(),
            status: z.string(),
            progress: z.record(z.string(), z.unknown()).nullable(),
            error: z.string().nullable(),
          }),
        ),
      })
      .nullable(),
    activeExperiment: z
      .object({ id: z.string(), name: z.string(), votes: z.number().int(), arms: z.array(IntervalNow) })
      .nullable(),
    next: z
      .object({
        action: z.enum([
          "off",
          "collect_votes",
          "start_round",
          "wait_for_training",
          "start_experiment",
          "decide_experiment",
          "wait",
        ]),
        detail: z.string(),
        expectedAt: z.string().nullable(),
      })
      .openapi({ description: "What the loop will do next and, when it can be said, when" }),
  })
  .openapi("LoopBaseModelStatus");

const loopRoute = createRoute({
  method: "get",
  path: "/api/admin/loop",
  tags: ["loop"],
  summary:
    "The loop now: per base model the champion, active round and runs, active experiment, usable votes since the champion's snapshot and what happens next; its settings and latest rounds",
  security: adminSecurity,
  request: { query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(20) }) },
  responses: {
    200: json(
      z.object({
        enabled: z.boolean(),
        checkSeconds: z.number().int(),
        objectives: z.array(z.string()),
        baseModels: z.array(BaseModelLoopSchema),
        settings: z.record(z.string(), z.unknown()),
        rounds: z.array(RoundSchema),
      }),
      "Loop status",
    ),
    ...adminErrors,
  },
});

const roundRoute = createRoute({
  method: "get",
  path: "/api/admin/loop/rounds/{id}",
  tags: ["loop"],
  summary: "One round: its snapshot, training runs, experiment and why it ended as it did",
  security: adminSecurity,
  request: {
    params: z.object({
      id: z
        .string()
        .max(128)
        .openapi({ param: { name: "id", in: "path" } }),
    }),
  },
  responses: { 200: json(RoundSchema, "The round"), 404: err("No such round"), ...adminErrors },
});

const tickRoute = createRoute({
  method: "post",
  path: "/api/admin/loop/tick",
  tags: ["loop"],
  summary: "Run the scheduler tick now (quality refresh, experiment decisions, rounds); reports each step",
  security: adminSecurity,
  responses: {
    200: json(z.object({ steps: z.record(z.string(), z.unknown()) }), "What each step did"),
    ...adminErrors,
  },
});

export function registerAdminLoopRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  const withRuns = async (r: LoopRound) =>
    roundJson(
      r,
      (await listRuns(deps.db, { roundId: r.id, limit: 100 })).map((x) => x.id),
    );

  app.openapi(loopRoute, async (c) => {
    const { limit } = c.req.valid("query");
    const rounds = await listRounds(deps.db, limit);
    const { loop } = deps.config;
    const status = await loopStatus(deps);
    return c.json({ ...status, settings: { ...loop }, rounds: await Promise.all(rounds.map(withRuns)) }, 200);
  });

  app.openapi(roundRoute, async (c) => {
    const r = await findRound(deps.db, c.req.valid("param").id);
    if (!r) throw new ApiError(404, "round_not_found", "There is no such round.");
    return c.json(await withRuns(r), 200);
  });

  app.openapi(tickRoute, async (c) => c.json({ steps: await loopTick(deps) }, 200));
}
