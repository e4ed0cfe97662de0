/**
 * Admin sign-in. `POST /api/admin/session` exchanges the admin key for a signed, expiring,
 * httpOnly, SameSite=Strict session cookie (scoped to /api/admin) and answers the session's CSRF
 * token; `GET` says who is asking; `DELETE` signs out. `adminGuard` guards every other
 * `/api/admin/*` route: the key header (x-admin-key or Bearer) as before, or the session cookie,
 * whose POSTs, PUTs, PATCHes and DELETEs must carry the CSRF token and come from our own origin.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Deps } from "../deps.js";
import {
  type AdminSessionClaim,
  adminCookieValue,
  adminCsrfToken,
  checkAdminCsrf,
  readAdminCookie,
} from "../domain/adminSessionToken.js";
import { perMinute } from "../domain/tokenBucket.js";
import { ApiError } from "../http/errors.js";
import { isAllowedOrigin, type OriginPolicy } from "../http/origin.js";
import { RateLimiter } from "../voting/rateLimiter.js";
import { err, json } from "./routeDocs.js";
import { CSRF_HEADER, clientIp, originPolicy, type VoterEnv } from "./voterSession.js";

export const ADMIN_COOKIE = "prefloop_admin";
export const ADMIN_SESSION_SECONDS = 12 * 3600;
const COOKIE_PATH = "/api/admin";
const SESSION_PATH = "/api/admin/session";

/** OpenAPI security of an admin route: the key header, or the session cookie with its CSRF token. */
export const adminSecurity: Record<string, string[]>[] = [
  { adminKey: [] },
  { adminCookie: [], csrfHeader: [] },
];

const digest = (s: string) => createHash("sha256").update(s).digest();
const keyTagOf = (key: string) => digest(`prefloop-admin-key:${key}`).toString("base64url").slice(0, 16);
const nowSeconds = () => Math.floor(Date.now() / 1000);

function keyMatches(given: string | undefined, key: string): boolean {
  return Boolean(given) && timingSafeEqual(digest(given as string), digest(key));
}

function headerKey(c: Context): string | undefined {
  return c.req.header("x-admin-key") ?? c.req.header("authorization")?.replace(/^Bearer\s+/i, "");
}

function sessionOf(c: Context, deps: Deps, key: string): AdminSessionClaim | null {
  return readAdminCookie(deps.signer, keyTagOf(key), getCookie(c, ADMIN_COOKIE), nowSeconds());
}

/** A state-changing request from a browser must name one of our origins (never judged by Host). */
function fromOurOrigin(c: Context, policy: OriginPolicy): boolean {
  const origin = c.req.header("origin");
  if (origin !== undefined) return isAllowedOrigin(origin, policy);
  return c.req.header("sec-fetch-site") !== "cross-site";
}

const unsafe = (method: string) => !["GET", "HEAD", "OPTIONS"].includes(method);

function requireCsrf(c: Context, deps: Deps, claim: AdminSessionClaim): void {
  if (!fromOurOrigin(c, originPolicy(deps.config))) {
    throw new ApiError(403, "bad_origin", "Requests from this site are not accepted.");
  }
  if (!checkAdminCsrf(deps.signer, claim.sessionId, c.req.header(CSRF_HEADER))) {
    throw new ApiError(
      403,
      "csrf",
      "This request lacks a valid CSRF token; sign in again or reload the page.",
    );
  }
}

/** Guards /api/admin/*: closed without a key; the key header or a session cookie (+ CSRF) opens it. */
export function adminGuard(deps: Deps): MiddlewareHandler<VoterEnv> {
  const key = deps.config.adminApiKey;
  return async (c, next) => {
    if (!key) throw new ApiError(403, "admin_disabled", "The admin API is closed: ADMIN_API_KEY is not set.");
    c.header("cache-control", "no-store");
    if (c.req.path === SESSION_PATH) return next(); // the sign-in routes check for themselves
    const given = headerKey(c);
    if (given !== undefined) {
      if (!keyMatches(given, key)) throw new ApiError(401, "unauthorized", "The admin key is wrong.");
      return next();
    }
    const claim = sessionOf(c, deps, key);
    if (!claim) {
      throw new ApiError(
        401,
        "unauthorized",
        "Sign in with the admin key (POST /api/admin/session) or send it in the x-admin-key header.",
      );
    }
    if (unsafe(c.req.method)) requireCsrf(c, deps, claim);
    return next();
  };
}

const SignInSchema = z
  .object({ key: z.string().min(1).max(512).openapi({ description: "The admin key" }) })
  .openapi("AdminSignIn");
const AdminSessionSchema = z
  .object({
    signedIn: z.boolean(),
    via: z.enum(["cookie", "key"]).nullable().openapi({ description: "How this request was authenticated" }),
    expiresAt: z.string().nullable().openapi({ description: "When the session cookie expires (ISO 8601)" }),
    csrfToken: z
      .string()
      .nullable()
      .openapi({ description: "Send as x-csrf-token on the session's POST and DELETE requests" }),
  })
  .openapi("AdminSession");
export type AdminSession = z.infer<typeof AdminSessionSchema>;

const signInRoute = createRoute({
  method: "post",
  path: SESSION_PATH,
  tags: ["admin"],
  summary:
    "Sign in: exchange the admin key for a session cookie (httpOnly, SameSite=Strict, 12 hours) and a CSRF token",
  request: { body: { content: { "application/json": { schema: SignInSchema } }, required: true } },
  responses: {
    200: json(AdminSessionSchema, "Signed in; the cookie is set"),
    400: err("No key given"),
    401: err("Wrong key"),
    403: err("Admin API closed (no ADMIN_API_KEY) or a request from another site"),
    429: err("Too many attempts"),
  },
});

const whoAmIRoute = createRoute({
  method: "get",
  path: SESSION_PATH,
  tags: ["admin"],
  summary: "Who is asking: signed in by cookie or key, until when, and the session's CSRF token",
  security: [{ adminKey: [] }, { adminCookie: [] }],
  responses: {
    200: json(AdminSessionSchema, "Signed in"),
    401: err("Not signed in"),
    403: err("Admin API closed"),
  },
});

const signOutRoute = createRoute({
  method: "delete",
  path: SESSION_PATH,
  tags: ["admin"],
  summary: "Sign out: clears the session cookie (a signed-in cookie needs its CSRF token)",
  security: [{ adminCookie: [], csrfHeader: [] }],
  responses: {
    200: json(AdminSessionSchema, "Signed out"),
    403: err("Missing CSRF token, another site, or admin API closed"),
  },
});

export function registerAdminSessionRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  const key = deps.config.adminApiKey;
  const attempts = new RateLimiter(perMinute(10));
  app.openAPIRegistry.registerComponent("securitySchemes", "adminCookie", {
    type: "apiKey",
    in: "cookie",
    name: ADMIN_COOKIE,
  });

  app.openapi(signInRoute, async (c) => {
    if (!key) throw new ApiError(403, "admin_disabled", "The admin API is closed: ADMIN_API_KEY is not set.");
    if (!fromOurOrigin(c, originPolicy(deps.config))) {
      throw new ApiError(403, "bad_origin", "Requests from this site are not accepted.");
    }
    const ip = clientIp(c);
    const turn = attempts.take(ip);
    if (!turn.allowed) {
      throw new ApiError(429, "rate_limited", "Too many sign-in attempts; wait a minute.", {
        "retry-after": String(Number.isFinite(turn.retryAfterSeconds) ? turn.retryAfterSeconds : 60),
      });
    }
    if (!keyMatches(c.req.valid("json").key, key)) {
      throw new ApiError(401, "unauthorized", "That is not the admin key.");
    }
    attempts.refund(ip);
    const claim = {
      sessionId: randomBytes(18).toString("base64url"),
      expiresAt: nowSeconds() + ADMIN_SESSION_SECONDS,
    };
    setCookie(c, ADMIN_COOKIE, adminCookieValue(deps.signer, keyTagOf(key), claim), {
      httpOnly: true,
      secure: deps.config.env === "prod",
      sameSite: "Strict",
      path: COOKIE_PATH,
      maxAge: ADMIN_SESSION_SECONDS,
    });
    deps.log.info("admin signed in", { ip });
    return c.json(
      {
        signedIn: true,
        via: "cookie" as const,
        expiresAt: new Date(claim.expiresAt * 1000).toISOString(),
        csrfToken: adminCsrfToken(deps.signer, claim.sessionId),
      },
      200,
    );
  });

  app.openapi(whoAmIRoute, async (c) => {
    if (!key) throw new ApiError(403, "admin_disabled", "The admin API is closed: ADMIN_API_KEY is not set.");
    const given = headerKey(c);
    if (given !== undefined && keyMatches(given, key)) {
      return c.json({ signedIn: true, via: "key" as const, expiresAt: null, csrfToken: null }, 200);
    }
    const claim = sessionOf(c, deps, key);
    if (!claim) throw new ApiError(401, "unauthorized", "Not signed in.");
    return c.json(
      {
        signedIn: true,
        via: "cookie" as const,
        expiresAt: new Date(claim.expiresAt * 1000).toISOString(),
        csrfToken: adminCsrfToken(deps.signer, claim.sessionId),
      },
      200,
    );
  });

  app.openapi(signOutRoute, async (c) => {
    if (!key) throw new ApiError(403, "admin_disabled", "The admin API is closed: ADMIN_API_KEY is not set.");
    const claim = sessionOf(c, deps, key);
    if (claim) requireCsrf(c, deps, claim);
    deleteCookie(c, ADMIN_COOKIE, { path: COOKIE_PATH, httpOnly: true, sameSite: "Strict" });
    return c.json({ signedIn: false, via: null, expiresAt: null, csrfToken: null }, 200);
  });
}
