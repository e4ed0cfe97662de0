/**
 * The voting API (documented at /openapi.json): a voter session, pairs from the pool, votes,
 * voter-written prompts, and the admin routes (admin.ts). Handlers are thin: the pool, votes and
 * prompt sets live in functions/src/voting, the rules in functions/src/domain.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Deps } from "../deps.js";
import { checkPrompt, parseBlocklist } from "../domain/promptPolicy.js";
import { issueVoteToken, readVoteToken } from "../domain/voteToken.js";
import { limitBody } from "../http/bodyLimit.js";
import { ApiError, errorBody, sendError } from "../http/errors.js";
import { pgCode } from "../platform/db/rows.js";
import {
  findExperiment,
  findPromptSet,
  PairPool,
  type PoolScope,
  type ServedPair,
} from "../voting/pairPool.js";
import { insertVoterPrompt } from "../voting/promptSets.js";
import { recordVote, voterVoteCount } from "../voting/votes.js";
import { registerAdminRoutes } from "./admin.js";
import { registerResourceRoutes } from "./resources.js";
import {
  CSRF_HEADER,
  createFirstVisitVoter,
  csrfGuard,
  csrfToken,
  ensureVoter,
  rateLimit,
  takePromptToken,
  VOTER_COOKIE,
  type VoterEnv,
  type VotingLimiters,
  voterSession,
  votingLimiters,
} from "./voterSession.js";
import {
  ErrorSchema,
  type Pair,
  PairQuerySchema,
  PairSchema,
  PendingSchema,
  PromptAcceptedSchema,
  PromptRequestSchema,
  SessionSchema,
  VoteRequestSchema,
  VoteSchema,
} from "./votingSchemas.js";

const json = <T>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [c, json(ErrorSchema, `Error (${c})`)])) as Record<
    number,
    ReturnType<typeof json<typeof ErrorSchema>>
  >;
const voterSecurity = [{ voterCookie: [] }];
const postSecurity = [{ voterCookie: [], csrfHeader: [] }];

const sessionRoute = createRoute({
  method: "get",
  path: "/api/session",
  tags: ["voting"],
  summary: "The voter's session: sets the anonymous voter cookie on a first visit, returns the CSRF token",
  security: voterSecurity,
  responses: { 200: json(SessionSchema, "The session"), ...errors(429) },
});

const nextPairRoute = createRoute({
  method: "get",
  path: "/api/pairs/next",
  tags: ["voting"],
  summary: "The next pair of images to compare, never one this voter has seen",
  security: voterSecurity,
  request: { query: PairQuerySchema },
  responses: {
    200: json(PairSchema, "A pair, with its vote token"),
    202: json(PendingSchema, "No pair is ready yet; generation is queued. Retry after Retry-After seconds."),
    ...errors(400, 404, 409, 429, 503),
  },
});

const pairRoute = createRoute({
  method: "get",
  path: "/api/pairs/{pairId}",
  tags: ["voting"],
  summary: "A pair made for this voter (their own prompt): 202 while generating, then the pair",
  security: voterSecurity,
  request: {
    params: z.object({
      pairId: z
        .string()
        .max(128)
        .openapi({ param: { name: "pairId", in: "path" } }),
    }),
  },
  responses: {
    200: json(PairSchema, "The pair, with its vote token"),
    202: json(PendingSchema, "Still generating"),
    ...errors(404, 429, 502),
  },
});

const voteRoute = createRoute({
  method: "post",
  path: "/api/votes",
  tags: ["voting"],
  summary: "Record a vote (once per voter and pair; repeating the same vote is idempotent)",
  security: postSecurity,
  request: { body: { content: { "application/json": { schema: VoteRequestSchema } }, required: true } },
  responses: {
    201: json(VoteSchema, "Stored"),
    200: json(VoteSchema, "Already stored with the same choice"),
    ...errors(400, 401, 403, 404, 409, 410, 429),
  },
});

const promptRoute = createRoute({
  method: "post",
  path: "/api/prompts",
  tags: ["voting"],
  summary: "Write a prompt and get a pair generated for it (poll the returned path)",
  security: postSecurity,
  request: { body: { content: { "application/json": { schema: PromptRequestSchema } }, required: true } },
  responses: {
    202: json(PromptAcceptedSchema, "Queued for generation"),
    ...errors(400, 401, 403, 422, 429, 503),
  },
});

function onApiError(log: Deps["log"]) {
  return (err: Error, c: Context) => {
    if (err instanceof ApiError) return sendError(c, err);
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode;
      const code = status === 413 ? "too_large" : status === 400 ? "invalid_request" : "http_error";
      return c.json(errorBody(code, err.message || "The request could not be read."), status);
    }
    log.error("unhandled error", {
      path: c.req.path,
      method: c.req.method,
      error: String(err),
      stack: err.stack,
    });
    return c.json(errorBody("internal", "Something went wrong on our side; it has been logged."), 500);
  };
}

export interface VotingApiOptions {
  /** Rate limiters (tests and benchmarks pass their own); default: from the configuration. */
  limiters?: VotingLimiters;
  pool?: PairPool;
}

export function votingApi(deps: Deps, opts: VotingApiOptions = {}): OpenAPIHono<VoterEnv> {
  const { config, db, signer, blobs, log } = deps;
  const limiters = opts.limiters ?? votingLimiters(config);
  const pool = opts.pool ?? new PairPool({ db, queue: deps.queue, log, depth: config.voting.poolDepth });
  const policy = {
    maxChars: config.voting.promptMaxChars,
    blocklist: parseBlocklist(config.voting.promptBlocklist),
  };

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
  for (const path of ["/api/session", "/api/pairs/*"]) app.use(path, createFirstVisitVoter(db));

  const present = async (p: ServedPair, voterId: string): Promise<Pair> => {
    const ttl = config.voting.voteTokenTtlSeconds;
    const expiresAt = Math.floor(Date.now() / 1000) + ttl;
    const [leftUrl, rightUrl] = await Promise.all([
      blobs.signedUrl(p.leftKey, { expiresInSeconds: Math.max(ttl, 60) }),
      blobs.signedUrl(p.rightKey, { expiresInSeconds: Math.max(ttl, 60) }),
    ]);
    return {
      pairId: p.pairId,
      experimentId: p.experimentId,
      prompt: { id: p.promptId, text: p.promptText, category: p.category },
      left: {
        url: leftUrl,
        width: p.width,
        height: p.height,
        alt: `Left image generated for: ${p.promptText}`,
      },
      right: {
        url: rightUrl,
        width: p.width,
        height: p.height,
        alt: `Right image generated for: ${p.promptText}`,
      },
      voteToken: issueVoteToken(signer, { pairId: p.pairId, voterId, expiresAt }),
      expiresAt: new Date(expiresAt * 1000).toISOString(),
    };
  };

  /** Runs `fn`; if the voter row is gone (database reset under an old cookie), recreates it and retries once. */
  const withVoter = async <T>(voterId: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (pgCode(err) !== "23503") throw err;
      await ensureVoter(db, voterId);
      return fn();
    }
  };

  const resolveScope = async (q: { experiment?: string | undefined; promptSet?: string | undefined }) => {
    const scope: PoolScope = { experimentId: null, promptSetId: null };
    if (q.experiment) {
      const e = await findExperiment(db, q.experiment);
      if (!e) throw new ApiError(404, "experiment_not_found", "There is no such experiment.");
      if (e.status !== "running") {
        throw new ApiError(409, "experiment_not_running", `This experiment is ${e.status}, not running.`);
      }
      scope.experimentId = e.id;
      scope.promptSetId = e.promptSetId;
    }
    if (q.promptSet) {
      const s = await findPromptSet(db, q.promptSet);
      if (!s) throw new ApiError(404, "prompt_set_not_found", "There is no such prompt set.");
      scope.promptSetId = s.id;
    }
    return scope;
  };

  app.openapi(sessionRoute, async (c) => {
    const voterId = c.get("voterId");
    const voterVotes = c.get("newVoter") ? 0 : await voterVoteCount(db, voterId);
    c.header("cache-control", "no-store");
    return c.json(
      { csrfToken: csrfToken(signer, voterId), voterVotes, promptMaxChars: policy.maxChars },
      200,
    );
  });

  app.openapi(nextPairRoute, async (c) => {
    const voterId = c.get("voterId");
    const scope = await resolveScope(c.req.valid("query"));
    c.header("cache-control", "no-store");
    const pair = await withVoter(voterId, () => pool.claim(scope, voterId));
    if (pair) {
      await pool.maybeTopUp(scope);
      return c.json(await present(pair, voterId), 200);
    }
    const topUp = await pool.maybeTopUp(scope, true);
    if (topUp && topUp.reason === "no_model") {
      throw new ApiError(
        503,
        "no_model",
        "No image model is registered yet, so there is nothing to compare.",
        {
          "retry-after": "30",
        },
      );
    }
    const generating = topUp?.created ? topUp.created : (await pool.counts(scope)).generating;
    if (generating === 0) {
      throw new ApiError(503, "pool_empty", "There are no prompts to generate pairs from yet.", {
        "retry-after": "30",
      });
    }
    c.header("retry-after", "2");
    return c.json(
      { status: "pending" as const, retryAfterSeconds: 2, message: "New pairs are being generated." },
      202,
    );
  });

  app.openapi(pairRoute, async (c) => {
    const voterId = c.get("voterId");
    const r = await pool.reservedPair(c.req.valid("param").pairId, voterId);
    c.header("cache-control", "no-store");
    if (r.state === "missing") throw new ApiError(404, "pair_not_found", "There is no such pair for you.");
    if (r.state === "failed") {
      throw new ApiError(
        502,
        "generation_failed",
        "Generating the images failed; please try another prompt.",
      );
    }
    if (r.state === "generating") {
      c.header("retry-after", "1");
      return c.json({ status: "pending" as const, retryAfterSeconds: 1, message: "Still generating." }, 202);
    }
    return c.json(await present(r.pair, voterId), 200);
  });

  app.openapi(voteRoute, async (c) => {
    const voterId = c.get("voterId");
    const body = c.req.valid("json");
    const check = readVoteToken(signer, body.token, Math.floor(Date.now() / 1000));
    if (!check.ok) {
      if (check.reason === "expired") {
        throw new ApiError(410, "token_expired", "This pair has expired; here is a fresh one.");
      }
      throw new ApiError(400, "invalid_token", "This vote token is not valid.");
    }
    if (check.claim.voterId !== voterId) {
      throw new ApiError(403, "wrong_voter", "This pair was shown to someone else.");
    }
    let stored: Awaited<ReturnType<typeof recordVote>>;
    try {
      stored = await withVoter(voterId, () =>
        recordVote(db, {
          pairId: check.claim.pairId,
          voterId,
          choice: body.choice,
          decisionMs: body.decisionMs ?? null,
        }),
      );
    } catch (err) {
      if (pgCode(err) === "23503") throw new ApiError(404, "pair_not_found", "This pair no longer exists.");
      throw err;
    }
    if (!stored.inserted && stored.choice !== body.choice) {
      throw new ApiError(409, "vote_conflict", `You already voted "${stored.choice}" on this pair.`);
    }
    const out = {
      voteId: stored.voteId,
      pairId: stored.pairId,
      choice: stored.choice,
      recordedAt: stored.recordedAt.toISOString(),
      duplicate: !stored.inserted,
      voterVotes: stored.voterVotes,
    };
    return stored.inserted ? c.json(out, 201) : c.json(out, 200);
  });

  app.openapi(promptRoute, async (c) => {
    const voterId = c.get("voterId");
    const checked = checkPrompt(c.req.valid("json").text, policy);
    if (!checked.ok) throw new ApiError(422, checked.code, checked.message);
    takePromptToken(limiters, voterId);
    const pairId = await withVoter(voterId, async () => {
      const promptId = await insertVoterPrompt(db, voterId, checked.text);
      return pool.reserveForPrompt(promptId, checked.text, voterId);
    });
    if (!pairId) throw new ApiError(503, "no_model", "No image model is registered yet.");
    c.header("retry-after", "2");
    return c.json(
      { pairId, status: "generating" as const, retryAfterSeconds: 2, poll: `/api/pairs/${pairId}` },
      202,
    );
  });

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
