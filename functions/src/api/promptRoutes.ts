/** `POST /api/prompts`: a voter writes a prompt; a pair for it is generated and reserved for them. */
import { createRoute } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { checkPrompt, parseBlocklist } from "../domain/promptPolicy.js";
import { ApiError } from "../http/errors.js";
import type { PairPool } from "../voting/pairPool.js";
import { insertVoterPrompt } from "../voting/promptSets.js";
import type { ApiApp } from "./resources.js";
import { errors, json, postSecurity } from "./routeDocs.js";
import { withVoter } from "./voterRows.js";
import { takePromptToken, type VotingLimiters } from "./voterSession.js";
import { PromptAcceptedSchema, PromptRequestSchema } from "./votingSchemas.js";

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

export function registerPromptRoutes(
  app: ApiApp,
  deps: Deps,
  parts: { pool: PairPool; limiters: VotingLimiters },
): void {
  const policy = {
    maxChars: deps.config.voting.promptMaxChars,
    blocklist: parseBlocklist(deps.config.voting.promptBlocklist),
  };
  app.openapi(promptRoute, async (c) => {
    const voterId = c.get("voterId");
    const checked = checkPrompt(c.req.valid("json").text, policy);
    if (!checked.ok) throw new ApiError(422, checked.code, checked.message);
    takePromptToken(parts.limiters, voterId);
    const pairId = await withVoter(deps.db, voterId, async () => {
      const promptId = await insertVoterPrompt(deps.db, voterId, checked.text);
      return parts.pool.reserveForPrompt(promptId, checked.text, voterId);
    });
    if (!pairId) throw new ApiError(503, "no_model", "No image model is registered yet.");
    c.header("retry-after", "2");
    return c.json(
      { pairId, status: "generating" as const, retryAfterSeconds: 2, poll: `/api/pairs/${pairId}` },
      202,
    );
  });
}
