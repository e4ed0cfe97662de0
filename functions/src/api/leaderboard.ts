/**
 * `GET /api/leaderboard[?category=&baseModel=]`: the public, read-only leaderboard of models (base
 * model + adapter) from usable votes: overall, for one prompt category, or one base model's. Cached in process and by
 * clients (Cache-Control: public, max-age=60).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { leaderboardService, UnknownCategoryError } from "../ranking/leaderboard.js";
import { errors, json } from "./routeDocs.js";
import type { VoterEnv } from "./voterSession.js";

export const CACHE_SECONDS = 60;

const ModelSchema = z
  .object({
    rank: z
      .number()
      .int()
      .openapi({ description: "1 + the number of models whose lower bound is above this upper bound" }),
    model: z.string().openapi({ description: "adapter id, or base:<baseModelId> for the base model alone" }),
    adapterId: z.string().nullable(),
    baseModelId: z.string(),
    objective: z.string().nullable(),
    status: z.string().nullable(),
    rating: z.number().openapi({ description: "Bradley–Terry rating on the Elo scale (mean 1000)" }),
    lower: z.number().nullable().openapi({ description: "2.5 % bootstrap quantile (voters resampled)" }),
    upper: z.number().nullable().openapi({ description: "97.5 % bootstrap quantile" }),
    votes: z.number().int(),
    wins: z.number().int(),
    losses: z.number().int(),
    ties: z.number().int(),
    bothBad: z.number().int(),
    bothBadRate: z.number(),
    onlineElo: z.number().openapi({ description: "online Elo in vote order (K = 4), for display only" }),
  })
  .openapi("LeaderboardModel");

const LeaderboardSchema = z
  .object({
    category: z.string().nullable(),
    baseModelId: z.string().nullable(),
    categories: z.array(z.string()).openapi({ description: "prompt categories with usable votes" }),
    generatedAt: z.string(),
    votes: z.number().int(),
    voters: z.number().int(),
    rounds: z.number().int(),
    seed: z.number().int(),
    method: z.string(),
    position: z.object({
      leftWinProbability: z.number().openapi({ description: "P(the left image wins) between equal models" }),
      eloPoints: z.number(),
    }),
    models: z.array(ModelSchema),
  })
  .openapi("Leaderboard");

const route = createRoute({
  method: "get",
  path: "/api/leaderboard",
  tags: ["leaderboard"],
  summary:
    "Models ranked by Bradley–Terry ratings with voter-bootstrap intervals, overall, per prompt category or per base model",
  request: {
    query: z.object({
      category: z
        .string()
        .min(1)
        .max(200)
        .optional()
        .openapi({ description: "a prompt category (see `categories`)" }),
      baseModel: z.string().min(1).max(128).optional().openapi({
        description: "only this base model's pairs (ratings compare only within one base model)",
      }),
    }),
  },
  responses: { 200: json(LeaderboardSchema, "The leaderboard"), ...errors(400, 404) },
});

export function registerLeaderboardRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  const service = leaderboardService(deps, { ttlMs: CACHE_SECONDS * 1000 });
  app.openapi(route, async (c) => {
    const { category, baseModel } = c.req.valid("query");
    try {
      const board = await service.get({ category: category ?? null, baseModelId: baseModel ?? null });
      c.header("cache-control", `public, max-age=${CACHE_SECONDS}`);
      return c.json(board, 200);
    } catch (err) {
      if (err instanceof UnknownCategoryError)
        throw new ApiError(404, "unknown_category", `No usable votes in the prompt category "${category}".`);
      throw err;
    }
  });
}
