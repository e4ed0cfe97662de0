/**
 * Admin routes (x-admin-key or Authorization: Bearer, compared in constant time, or the admin
 * session cookie + CSRF token from adminSession.ts; closed while ADMIN_API_KEY is unset): import
 * prompt sets, list prompt sets, search votes, pool status and top-up.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import type { Deps } from "../deps.js";
import { guessFormat, parsePromptFile } from "../domain/promptImport.js";
import { shapesPromptSet } from "../domain/shapesPromptSet.js";
import { ApiError } from "../http/errors.js";
import { findExperiment, type PairPool, type PoolScope } from "../voting/pairPool.js";
import { findPromptSet, importPromptSet, listPromptSets } from "../voting/promptSets.js";
import { searchVotes } from "../voting/votes.js";
import { registerAdminBaseModelRoutes } from "./adminBaseModels.js";
import { adminGuard, adminSecurity, registerAdminSessionRoutes } from "./adminSession.js";
import type { VoterEnv } from "./voterSession.js";
import {
  ErrorSchema,
  ImportRequestSchema,
  ImportResultSchema,
  PoolStatusSchema,
  PromptSetSchema,
  VoteRecordSchema,
  VoteSearchQuerySchema,
} from "./votingSchemas.js";

const json = <T>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});
const err = (description: string) => json(ErrorSchema, description);
const adminErrors = {
  401: err("Missing or wrong admin key, and no admin session"),
  403: err("Admin API closed (no ADMIN_API_KEY)"),
};
const security = adminSecurity;

const PoolQuerySchema = z.object({
  experimentId: z.string().max(128).optional(),
  promptSet: z.string().max(200).optional(),
});

const importRoute = createRoute({
  method: "post",
  path: "/api/admin/prompt-sets",
  tags: ["admin"],
  summary:
    "Import a prompt set (JSONL, CSV, or PartiPrompts-style TSV with categories); adds missing prompts",
  security,
  request: { body: { content: { "application/json": { schema: ImportRequestSchema } }, required: true } },
  responses: {
    200: json(ImportResultSchema, "Imported"),
    400: err("Unreadable file"),
    ...adminErrors,
  },
});

const shapesRoute = createRoute({
  method: "post",
  path: "/api/admin/prompt-sets/shapes",
  tags: ["admin"],
  summary:
    "Import the tiny model's grammar as the prompt set `shapes` (2,352 captions; category = shape, challenge = held-out or in-training)",
  security,
  request: {
    query: z.object({
      heldoutOnly: z
        .enum(["true", "false"])
        .optional()
        .openapi({ description: "Only the captions held out of the tiny model's training" }),
    }),
  },
  responses: { 200: json(ImportResultSchema, "Imported"), ...adminErrors },
});

const listSetsRoute = createRoute({
  method: "get",
  path: "/api/admin/prompt-sets",
  tags: ["admin"],
  summary: "Prompt sets with their prompt counts",
  security,
  responses: { 200: json(z.object({ promptSets: z.array(PromptSetSchema) }), "Prompt sets"), ...adminErrors },
});

const votesRoute = createRoute({
  method: "get",
  path: "/api/admin/votes",
  tags: ["admin"],
  summary: "Search votes, newest first (filters combine; page with `before`)",
  security,
  request: { query: VoteSearchQuerySchema },
  responses: {
    200: json(z.object({ votes: z.array(VoteRecordSchema), nextBefore: z.string().nullable() }), "Votes"),
    400: err("Bad filter"),
    404: err("Unknown prompt set"),
    ...adminErrors,
  },
});

const poolRoute = createRoute({
  method: "get",
  path: "/api/admin/pool",
  tags: ["admin"],
  summary: "Pair pool status for an experiment / prompt set (default: the general pool)",
  security,
  request: { query: PoolQuerySchema },
  responses: { 200: json(PoolStatusSchema, "Pool status"), 404: err("Unknown scope"), ...adminErrors },
});

const topUpRoute = createRoute({
  method: "post",
  path: "/api/admin/pool/top-up",
  tags: ["admin"],
  summary: "Top the pool up to its depth now (queues generation jobs)",
  security,
  request: { query: PoolQuerySchema },
  responses: {
    200: json(z.object({ created: z.number().int(), reason: z.string() }), "Result"),
    404: err("Unknown scope"),
    ...adminErrors,
  },
});

export function registerAdminRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps, pool: PairPool): void {
  app.use("/api/admin/*", adminGuard(deps));
  registerAdminSessionRoutes(app, deps);
  registerAdminBaseModelRoutes(app, deps);
  app.use("/api/admin/prompt-sets", bodyLimit({ maxSize: 32 * 1024 * 1024 }));

  const scopeOf = async (q: { experimentId?: string | undefined; promptSet?: string | undefined }) => {
    const scope: PoolScope = { experimentId: null, promptSetId: null };
    if (q.experimentId) {
      const e = await findExperiment(deps.db, q.experimentId);
      if (!e) throw new ApiError(404, "experiment_not_found", "There is no such experiment.");
      scope.experimentId = e.id;
      scope.promptSetId = e.promptSetId;
    }
    if (q.promptSet) {
      const s = await findPromptSet(deps.db, q.promptSet);
      if (!s) throw new ApiError(404, "prompt_set_not_found", "There is no such prompt set.");
      scope.promptSetId = s.id;
    }
    return scope;
  };

  app.openapi(importRoute, async (c) => {
    const body = c.req.valid("json");
    const format = body.format ?? guessFormat(body.filename ?? "");
    if (!format) {
      throw new ApiError(
        400,
        "unknown_format",
        "Say format (jsonl, csv or tsv) or give a filename ending in one.",
      );
    }
    const parsed = parsePromptFile(format, body.content);
    if (parsed.prompts.length === 0) {
      throw new ApiError(400, "no_prompts", parsed.problems[0]?.message ?? "The file holds no prompts.");
    }
    const r = await importPromptSet(
      deps.db,
      { name: body.name, source: body.source ?? body.filename ?? `import:${format}` },
      parsed.prompts,
    );
    deps.log.info("prompt set imported", {
      name: body.name,
      imported: r.imported,
      problems: parsed.problems.length,
    });
    return c.json(
      {
        promptSetId: r.promptSetId,
        name: body.name,
        created: r.created,
        parsed: parsed.prompts.length,
        imported: r.imported,
        alreadyPresent: r.alreadyPresent,
        problems: parsed.problems.slice(0, 100),
      },
      200,
    );
  });

  app.openapi(shapesRoute, async (c) => {
    const { name, items } = shapesPromptSet({ heldoutOnly: c.req.valid("query").heldoutOnly === "true" });
    const r = await importPromptSet(deps.db, { name, source: "shapes-grammar" }, items);
    return c.json(
      {
        promptSetId: r.promptSetId,
        name,
        created: r.created,
        parsed: items.length,
        imported: r.imported,
        alreadyPresent: r.alreadyPresent,
        problems: [],
      },
      200,
    );
  });

  app.openapi(listSetsRoute, async (c) => c.json({ promptSets: await listPromptSets(deps.db) }, 200));

  app.openapi(votesRoute, async (c) => {
    const q = c.req.valid("query");
    let promptSetId: string | undefined;
    if (q.promptSet) {
      const s = await findPromptSet(deps.db, q.promptSet);
      if (!s) throw new ApiError(404, "prompt_set_not_found", "There is no such prompt set.");
      promptSetId = s.id;
    }
    const r = await searchVotes(deps.db, {
      voterId: q.voterId,
      pairId: q.pairId,
      experimentId: q.experimentId,
      promptSetId,
      choice: q.choice,
      q: q.q,
      since: q.since ? new Date(q.since) : undefined,
      before: q.before,
      limit: q.limit,
    });
    return c.json(r, 200);
  });

  app.openapi(poolRoute, async (c) => {
    const scope = await scopeOf(c.req.valid("query"));
    const [counts, queue] = await Promise.all([pool.counts(scope), deps.queue.stats("generation")]);
    return c.json({ ...scope, depth: deps.config.voting.poolDepth, ...counts, queue }, 200);
  });

  app.openapi(topUpRoute, async (c) => {
    const scope = await scopeOf(c.req.valid("query"));
    return c.json(await pool.topUp(scope), 200);
  });
}
