/**
 * The voting API (documented at /openapi.json), assembled: the voter middleware (session
 * cookie, CSRF, rate limits, CORS), one route file per resource (session, pairs, votes,
 * prompts), then the admin routes and the other resources' route files. Handlers are thin: the
 * pool, the allocator, votes and prompt sets live in functions/src/voting, the rules in
 * functions/src/domain.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { cors } from "hono/cors";
import type { Deps } from "../deps.js";
import { limitBody } from "../http/bodyLimit.js";
import { ApiError, errorResponse } from "../http/errors.js";
import { TrafficAllocator } from "../voting/allocator.js";
import { PairPool } from "../voting/pairPool.js";
import { registerAdminRoutes } from "./admin.js";
import { registerPairRoutes } from "./pairRoutes.js";
import { registerPromptRoutes } from "./promptRoutes.js";
import { registerResourceRoutes } from "./resources.js";
import { registerSessionRoutes } from "./sessionRoutes.js";
import { registerVoteRoutes } from "./voteRoutes.js";
import {
  CSRF_HEADER,
  csrfGuard,
  rateLimit,
  VOTER_COOKIE,
  type VoterEnv,
  type VotingLimiters,
  voterSession,
  votingLimiters,
} from "./voterSession.js";

function onApiError(log: Deps["log"]) {
  return (err: Error, c: Context) => errorResponse(err, c, log);
}

export interface VotingApiOptions {
  /** Rate limiters (tests and benchmarks pass their own); default: from the configuration. */
  limiters?: VotingLimiters;
  pool?: PairPool;
  /** The traffic allocator (tests pass one with a seeded random); default: from the configuration. */
  allocator?: TrafficAllocator;
}

export function votingApi(deps: Deps, opts: VotingApiOptions = {}): OpenAPIHono<VoterEnv> {
  const { config, db, log } = deps;
  const limiters = opts.limiters ?? votingLimiters(config);
  const pool = opts.pool ?? new PairPool({ db, queue: deps.queue, log, depth: config.voting.poolDepth });
  const allocator =
    opts.allocator ??
    new TrafficAllocator({ db }, pool, {
      goldRate: config.quality.goldPairRate,
      experimentShare: config.experiments.trafficShare,
    });

  const app = new OpenAPIHono<VoterEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
        throw new ApiError(400, "invalid_request", `${where}${issue?.message ?? "invalid request"}`);
      }
    },
  });
  app.onError(onApiError(log));
  app.openAPIRegistry.registerComponent("securitySchemes", "voterCookie", {
    type: "apiKey",
    in: "cookie",
    name: VOTER_COOKIE,
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "csrfHeader", {
    type: "apiKey",
    in: "header",
    name: CSRF_HEADER,
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "adminKey", {
    type: "apiKey",
    in: "header",
    name: "x-admin-key",
  });

  if (config.web.corsOrigins.length > 0) {
    app.use(
      "/api/*",
      cors({
        origin: config.web.corsOrigins,
        credentials: true,
        allowHeaders: ["content-type", CSRF_HEADER],
        allowMethods: ["GET", "POST"],
        maxAge: 600,
      }),
    );
  }
  for (const path of ["/api/session", "/api/pairs/*", "/api/votes", "/api/prompts"]) {
    app.use(path, limitBody(16 * 1024), voterSession(deps), csrfGuard(deps));
  }
  app.use("/api/session", rateLimit(limiters, { ipOnly: true }));
  app.use("/api/votes", rateLimit(limiters));
  app.use("/api/prompts", rateLimit(limiters));
  app.use("/api/pairs/*", async (c, next) =>
    rateLimit(limiters, { ipOnly: c.req.path !== "/api/pairs/next" })(c, next),
  );

  registerSessionRoutes(app, deps);
  registerPairRoutes(app, deps, { pool, allocator });
  registerVoteRoutes(app, deps);
  registerPromptRoutes(app, deps, { pool, limiters });
  registerAdminRoutes(app, deps, pool);
  registerResourceRoutes(app, deps, pool);

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "prefloop API",
      version: "1",
      description:
        "Pairs of generated images, votes on them, voter prompts, and administration. Errors are always {error: {code, message}}.",
    },
  });
  return app;
}
