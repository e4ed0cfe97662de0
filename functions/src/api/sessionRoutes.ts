/** `GET /api/session`: the voter's session (the cookie is set by the middleware) and its CSRF token. */
import { createRoute } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { voterVoteCount } from "../voting/votes.js";
import type { ApiApp } from "./resources.js";
import { errors, json, voterSecurity } from "./routeDocs.js";
import { csrfToken } from "./voterSession.js";
import { SessionSchema } from "./votingSchemas.js";

const sessionRoute = createRoute({
  method: "get",
  path: "/api/session",
  tags: ["voting"],
  summary: "The voter's session: sets the anonymous voter cookie on a first visit, returns the CSRF token",
  security: voterSecurity,
  responses: { 200: json(SessionSchema, "The session"), ...errors(429) },
});

export function registerSessionRoutes(app: ApiApp, deps: Deps): void {
  app.openapi(sessionRoute, async (c) => {
    const voterId = c.get("voterId");
    const voterVotes = c.get("newVoter") ? 0 : await voterVoteCount(deps.db, voterId);
    c.header("cache-control", "no-store");
    return c.json(
      {
        csrfToken: csrfToken(deps.signer, voterId),
        voterVotes,
        promptMaxChars: deps.config.voting.promptMaxChars,
      },
      200,
    );
  });
}
