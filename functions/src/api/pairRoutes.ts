/**
 * Pairs for voters: `GET /api/pairs/next` (the allocator picks the traffic class: data, gold or
 * a running experiment; the voter never chooses it) and `GET /api/pairs/{pairId}` (a pair made
 * for the voter's own prompt).
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { issueVoteToken } from "../domain/voteToken.js";
import { ApiError } from "../http/errors.js";
import type { TrafficAllocator } from "../voting/allocator.js";
import type { PairPool, ServedPair } from "../voting/pairPool.js";
import { PromptSetLookup } from "../voting/promptSets.js";
import type { ApiApp } from "./resources.js";
import { errors, json, voterSecurity } from "./routeDocs.js";
import { withVoter } from "./voterRows.js";
import { type Pair, PairQuerySchema, PairSchema, PendingSchema } from "./votingSchemas.js";

const nextPairRoute = createRoute({
  method: "get",
  path: "/api/pairs/next",
  tags: ["voting"],
  summary: "The next pair of images to compare, never one this voter has seen",
  description:
    "The server decides what each pair is: the champion model with two seeds, a running experiment's arms with one seed, or a quality check. Sides are drawn at random when the pair is served.",
  security: voterSecurity,
  request: { query: PairQuerySchema },
  responses: {
    200: json(PairSchema, "A pair, with its vote token"),
    202: json(PendingSchema, "No pair is ready yet; generation is queued. Retry after Retry-After seconds."),
    ...errors(400, 404, 429, 503),
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

/** A served pair as the voter sees it: signed image URLs and a vote token bound to pair and voter. */
async function present(deps: Deps, p: ServedPair, voterId: string): Promise<Pair> {
  const ttl = deps.config.voting.voteTokenTtlSeconds;
  const expiresAt = Math.floor(Date.now() / 1000) + ttl;
  const [leftUrl, rightUrl] = await Promise.all([
    deps.blobs.signedUrl(p.leftKey, { expiresInSeconds: Math.max(ttl, 60) }),
    deps.blobs.signedUrl(p.rightKey, { expiresInSeconds: Math.max(ttl, 60) }),
  ]);
  const image = (url: string, side: string) => ({
    url,
    width: p.width,
    height: p.height,
    alt: `${side} image generated for: ${p.promptText}`,
  });
  return {
    pairId: p.pairId,
    prompt: { id: p.promptId, text: p.promptText, category: p.category },
    left: image(leftUrl, "Left"),
    right: image(rightUrl, "Right"),
    voteToken: issueVoteToken(deps.signer, { pairId: p.pairId, voterId, expiresAt }),
    expiresAt: new Date(expiresAt * 1000).toISOString(),
  };
}

const retryLater = (code: string, message: string) =>
  new ApiError(503, code, message, { "retry-after": "30" });

export function registerPairRoutes(
  app: ApiApp,
  deps: Deps,
  parts: { pool: PairPool; allocator: TrafficAllocator },
): void {
  const { pool, allocator } = parts;
  const promptSets = new PromptSetLookup(deps.db);

  app.openapi(nextPairRoute, async (c) => {
    const voterId = c.get("voterId");
    const { promptSet } = c.req.valid("query");
    let promptSetId: string | null = null;
    if (promptSet) {
      const s = await promptSets.find(promptSet);
      if (!s) throw new ApiError(404, "prompt_set_not_found", "There is no such prompt set.");
      promptSetId = s.id;
    }
    c.header("cache-control", "no-store");
    const served = await withVoter(deps.db, voterId, () => allocator.next(voterId, promptSetId));
    if (served.pair) {
      await allocator.topUp(served.scopes);
      return c.json(await present(deps, served.pair, voterId), 200);
    }
    const topUps = await allocator.topUp(served.scopes, true);
    if (topUps.some((t) => t?.reason === "no_model")) {
      throw retryLater("no_model", "No image model is registered yet, so there is nothing to compare.");
    }
    let generating = topUps.reduce((n, t) => n + (t?.created ?? 0), 0);
    for (const scope of served.scopes) {
      if (generating > 0) break;
      generating += (await pool.counts(scope)).generating;
    }
    if (generating === 0) throw retryLater("pool_empty", "There are no prompts to generate pairs from yet.");
    c.header("retry-after", "2");
    return c.json(
      { status: "pending" as const, retryAfterSeconds: 2, message: "New pairs are being generated." },
      202,
    );
  });

  app.openapi(pairRoute, async (c) => {
    const voterId = c.get("voterId");
    const pairId = c.req.valid("param").pairId;
    let r = await pool.reservedPair(pairId, voterId);
    if (r.state === "generating") {
      // the voter waits on this pair alone: make sure its generations are not stuck
      const swept = await pool.maybeSweep().catch((err) => {
        deps.log.warn("sweep failed", { error: String(err) });
        return null;
      });
      if (swept?.failed) r = await pool.reservedPair(pairId, voterId);
    }
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
    return c.json(await present(deps, r.pair, voterId), 200);
  });
}
