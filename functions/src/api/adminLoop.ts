/**
 * The loop for admins: its settings and rounds (snapshot → training runs → experiment), and a
 * tick run now instead of waiting for the timer (`functions/src/loop`).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { findRound, type LoopRound, listRounds } from "../loop/rounds.js";
import { loopTick } from "../loop/tick.js";
import { listRuns } from "../training/runs.js";
import { adminSecurity } from "./adminSession.js";
import type { VoterEnv } from "./voterSession.js";
import { ErrorSchema } from "./votingSchemas.js";

const json = <T>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});
const err = (description: string) => json(ErrorSchema, description);
const adminErrors = { 401: err("Not signed in"), 403: err("Admin API closed, or CSRF token missing") };

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

const loopRoute = createRoute({
  method: "get",
  path: "/api/admin/loop",
  tags: ["loop"],
  summary: "The loop's settings and its latest rounds",
  security: adminSecurity,
  request: { query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(20) }) },
  responses: {
    200: json(
      z.object({ settings: z.record(z.string(), z.unknown()), rounds: z.array(RoundSchema) }),
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
    return c.json({ settings: { ...loop }, rounds: await Promise.all(rounds.map(withRuns)) }, 200);
  });

  app.openapi(roundRoute, async (c) => {
    const r = await findRound(deps.db, c.req.valid("param").id);
    if (!r) throw new ApiError(404, "round_not_found", "There is no such round.");
    return c.json(await withRuns(r), 200);
  });

  app.openapi(tickRoute, async (c) => c.json({ steps: await loopTick(deps) }, 200));
}
