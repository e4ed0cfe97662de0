/** `POST /api/votes`: a vote on a served pair, checked against its signed vote token. */
import { createRoute } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { readVoteToken } from "../domain/voteToken.js";
import { ApiError } from "../http/errors.js";
import { pgCode } from "../platform/db/rows.js";
import { recordVote } from "../voting/votes.js";
import type { ApiApp } from "./resources.js";
import { errors, json, postSecurity } from "./routeDocs.js";
import { withVoter } from "./voterRows.js";
import { VoteRequestSchema, VoteSchema } from "./votingSchemas.js";

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

export function registerVoteRoutes(app: ApiApp, deps: Deps): void {
  app.openapi(voteRoute, async (c) => {
    const voterId = c.get("voterId");
    const body = c.req.valid("json");
    const check = readVoteToken(deps.signer, body.token, Math.floor(Date.now() / 1000));
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
      stored = await withVoter(deps.db, voterId, () =>
        recordVote(deps.db, {
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
}
