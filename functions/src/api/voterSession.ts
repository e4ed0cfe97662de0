/**
 * Voter-facing HTTP guards: the anonymous voter cookie, CSRF protection for cookie-authenticated
 * POSTs, client IP, and per-voter / per-IP token-bucket rate limits.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Context, MiddlewareHandler } from "hono";
import { csrf } from "hono/csrf";
import type { Config } from "../config.js";
import { perHour, perMinute } from "../domain/tokenBucket.js";
import { csrfToken } from "../domain/voteToken.js";
import { ApiError } from "../http/errors.js";
import { isAllowedOrigin, type OriginPolicy } from "../http/origin.js";
import type { Db } from "../platform/db/port.js";
import type { Signer } from "../platform/signing.js";
import { RateLimiter } from "../voting/rateLimiter.js";
import { readVoterCookie, setVoterCookie } from "./voterCookie.js";

export { VOTER_COOKIE } from "./voterCookie.js";
export const CSRF_HEADER = "x-csrf-token";

export interface VoterEnv {
  Variables: { voterId: string; newVoter: boolean };
}

/** Creates the voter row for a voter id (idempotent). */
export async function ensureVoter(db: Db, voterId: string): Promise<void> {
  await db.orm.execute(
    sql`insert into voters (id, last_seen_at) values (${voterId}, now()) on conflict do nothing`,
  );
}

/**
 * Reads the signed voter cookie (`voterCookie.ts`); on a first visit (GET) picks a new voter id
 * and sets the cookie: httpOnly, SameSite=Lax, Secure in production, one year. A cookie that is
 * missing, tampered with or signed with another key is no cookie: POSTs are refused, a GET starts
 * a new voter. A cookie of the earlier format keeps its voter and is re-issued in the current one.
 * A new voter's row is written only when a request first stores something of theirs (a served
 * pair, a vote, a prompt: `withVoter` in voterRows.ts), so a refused request writes nothing.
 */
export function voterSession(deps: { signer: Signer; config: Config }): MiddlewareHandler<VoterEnv> {
  const secure = deps.config.env === "prod";
  return async (c, next) => {
    const cookie = await readVoterCookie(c, deps.signer);
    if (cookie) {
      c.set("voterId", cookie.voterId);
      c.set("newVoter", false);
      await next();
      if (cookie.legacy) await setVoterCookie(c, deps.signer, cookie.voterId, { secure });
      return;
    }
    if (c.req.method !== "GET") {
      throw new ApiError(401, "no_session", "Your voting session is missing or expired; reload the page.");
    }
    const id = `v_${randomUUID()}`;
    c.set("voterId", id);
    c.set("newVoter", true);
    await next();
    // Set on the way out, so a refused first request hands out no cookie either.
    if (c.res.status < 400) await setVoterCookie(c, deps.signer, id, { secure });
  };
}

export function originPolicy(config: Config): OriginPolicy {
  return {
    publicUrl: config.publicUrl,
    corsOrigins: config.web.corsOrigins,
    allowLoopback: config.env === "dev",
  };
}

/**
 * CSRF protection for cookie-authenticated POSTs, in three layers:
 * - `hono/csrf` refuses a form-type POST (urlencoded, multipart, text/plain: what another site
 *   can send without a preflight) unless its Origin or Sec-Fetch-Site says it is ours;
 * - any POST that names an Origin must name one of ours (scheme, host and port, never `Host`),
 *   and one a browser marks `Sec-Fetch-Site: cross-site` must come from a CORS origin;
 * - the `x-csrf-token` header must carry the voter's CSRF token (from GET /api/session): another
 *   site can neither read it nor set a custom header on a cross-site request without CORS.
 */
export function csrfGuard(deps: { signer: Signer; config: Config }): MiddlewareHandler<VoterEnv> {
  const policy = originPolicy(deps.config);
  const formGuard = csrf({ origin: (origin) => isAllowedOrigin(origin, policy) });
  return async (c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD" || c.req.method === "OPTIONS") return next();
    const origin = c.req.header("origin");
    const crossSite = c.req.header("sec-fetch-site") === "cross-site";
    if (
      (origin !== undefined && !isAllowedOrigin(origin, policy)) ||
      (crossSite && !(origin && policy.corsOrigins.includes(origin)))
    ) {
      throw new ApiError(403, "bad_origin", "Requests from this site are not accepted.");
    }
    const given = c.req.header(CSRF_HEADER);
    if (!given || !deps.signer.verify(`csrf:${c.get("voterId")}`, given)) {
      throw new ApiError(403, "csrf", "This request lacks a valid CSRF token; reload the page.");
    }
    return formGuard(c, next);
  };
}

export { csrfToken };

/**
 * The client's address behind CloudFront → API Gateway. Viewers can send any X-Forwarded-For;
 * CloudFront appends the address it saw and API Gateway reports CloudFront's as `sourceIp`. So
 * the address to trust is the last X-Forwarded-For entry that is not the proxy itself.
 */
export function forwardedClientIp(forwardedFor: string | undefined, sourceIp: string | undefined): string {
  const hops = (forwardedFor ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h.length > 0);
  while (hops.length > 0 && hops.at(-1) === sourceIp) hops.pop();
  return hops.at(-1) ?? sourceIp ?? "unknown";
}

/** The client's address: the socket peer locally; see `forwardedClientIp` in Lambda. */
export function clientIp(c: Context): string {
  const env = c.env as
    | {
        incoming?: { socket?: { remoteAddress?: string } };
        event?: { requestContext?: { http?: { sourceIp?: string } } };
      }
    | undefined;
  const socket = env?.incoming?.socket?.remoteAddress;
  if (socket) return socket;
  if (env?.event) {
    return forwardedClientIp(c.req.header("x-forwarded-for"), env.event.requestContext?.http?.sourceIp);
  }
  return "unknown";
}

export interface VotingLimiters {
  voter: RateLimiter;
  ip: RateLimiter;
  prompts: RateLimiter;
}

export function votingLimiters(config: Config): VotingLimiters {
  const r = config.voting.rateLimits;
  return {
    voter: new RateLimiter(perMinute(r.voterPerMinute)),
    ip: new RateLimiter(perMinute(r.ipPerMinute)),
    prompts: new RateLimiter(perHour(r.promptsPerHour, Math.max(1, Math.min(r.promptsPerHour, 10)))),
  };
}

function refused(retryAfterSeconds: number, what: string): ApiError {
  const s = Number.isFinite(retryAfterSeconds) ? retryAfterSeconds : 3600;
  return new ApiError(429, "rate_limited", `${what}; try again in ${s} second${s === 1 ? "" : "s"}.`, {
    "retry-after": String(s),
  });
}

/** Takes a token from the IP bucket and (unless `ipOnly`) the voter's bucket; 429 with Retry-After when empty. */
export function rateLimit(
  limiters: VotingLimiters,
  opts: { ipOnly?: boolean } = {},
): MiddlewareHandler<VoterEnv> {
  return async (c, next) => {
    const ip = clientIp(c);
    const byIp = limiters.ip.take(ip);
    if (!byIp.allowed) throw refused(byIp.retryAfterSeconds, "Too many requests from your network");
    if (!opts.ipOnly) {
      const byVoter = limiters.voter.take(c.get("voterId"));
      if (!byVoter.allowed) {
        limiters.ip.refund(ip);
        throw refused(byVoter.retryAfterSeconds, "You are going a little fast");
      }
    }
    return next();
  };
}

/** The written-prompt limit (each prompt costs two generations). */
export function takePromptToken(limiters: VotingLimiters, voterId: string): void {
  const r = limiters.prompts.take(voterId);
  if (!r.allowed) throw refused(r.retryAfterSeconds, "You have written many prompts lately");
}
