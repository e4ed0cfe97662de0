/**
 * Voters' quality for admins: the list with flags (code, reason, numbers), gold accuracy and vote
 * counts; `include` lets a flagged voter's votes count again (the flags stay visible), `exclude`
 * leaves a voter's votes out of snapshots, rankings and experiments. Votes are never deleted.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { findVoter, listVoters, overrideVoter } from "../quality/voters.js";
import { adminSecurity } from "./adminSession.js";
import { errors, json } from "./routeDocs.js";
import type { VoterEnv } from "./voterSession.js";

const FlagSchema = z.object({
  code: z.string().openapi({ description: "one_side, gold_accuracy, too_fast or outlier" }),
  reason: z.string(),
  at: z.string(),
  numbers: z.record(z.string(), z.number()).optional(),
});

const VoterSchema = z
  .object({
    id: z.string(),
    createdAt: z.string(),
    lastSeenAt: z.string().nullable(),
    isDemo: z.boolean(),
    excluded: z.boolean().openapi({ description: "whether the voter's votes are left out of every use" }),
    qualityOverride: z.enum(["include", "exclude"]).nullable(),
    qualityFlags: z.array(FlagSchema),
    qualityCheckedAt: z.string().nullable(),
    goldVotes: z.number().int(),
    goldCorrect: z.number().int(),
    goldAccuracy: z.number().nullable(),
    votes: z.number().int(),
    lastVoteAt: z.string().nullable(),
  })
  .openapi("VoterQuality");

const idParam = z.object({
  id: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: "id", in: "path" } }),
});

const listRoute = createRoute({
  method: "get",
  path: "/api/admin/voters",
  tags: ["voters"],
  summary: "Voters with their quality flags, reasons, gold accuracy and vote counts (flagged first)",
  security: adminSecurity,
  request: {
    query: z.object({
      filter: z.enum(["all", "flagged", "excluded"]).default("all"),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
    }),
  },
  responses: {
    200: json(z.object({ voters: z.array(VoterSchema), total: z.number().int() }), "Voters"),
    ...errors(400, 401, 403),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/api/admin/voters/{id}",
  tags: ["voters"],
  summary: "One voter's quality",
  security: adminSecurity,
  request: { params: idParam },
  responses: { 200: json(VoterSchema, "The voter"), ...errors(401, 403, 404) },
});

const overrideRoute = (action: "include" | "exclude") =>
  createRoute({
    method: "post",
    path: `/api/admin/voters/{id}/${action}`,
    tags: ["voters"],
    summary:
      action === "include"
        ? "Count this voter's votes again despite their flags (the flags stay visible)"
        : "Leave this voter's votes out of snapshots, rankings and experiments",
    security: adminSecurity,
    request: { params: idParam },
    responses: { 200: json(VoterSchema, "The voter after the change"), ...errors(401, 403, 404) },
  });

const notFound = (id: string) => new ApiError(404, "not_found", `No voter ${id}.`);

export function registerAdminVoterRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  app.openapi(listRoute, async (c) => c.json(await listVoters(deps, c.req.valid("query")), 200));
  app.openapi(getRoute, async (c) => {
    const { id } = c.req.valid("param");
    const voter = await findVoter(deps, id);
    if (!voter) throw notFound(id);
    return c.json(voter, 200);
  });
  for (const action of ["include", "exclude"] as const)
    app.openapi(overrideRoute(action), async (c) => {
      const { id } = c.req.valid("param");
      const voter = await overrideVoter(deps, id, action);
      if (!voter) throw notFound(id);
      return c.json(voter, 200);
    });
}
