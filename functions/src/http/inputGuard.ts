/**
 * Refuses input no handler can store or compare, before any handler runs: a path or query whose
 * percent-encoding is not valid UTF-8 (`%`, `%zz`, `%C0%AF`), a NUL character anywhere in the
 * path, the query or a JSON body (PostgreSQL text cannot hold one), and a JSON body with a lone
 * UTF-16 surrogate (`"\ud800"`, which has no UTF-8 form). Each is a 400 with the one error shape.
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.js";

const LONE_SURROGATE = /\p{Surrogate}/u;

/** Why a decoded string cannot be stored as text, or null. */
export function unstorableText(s: string): "nul" | "lone_surrogate" | null {
  if (s.includes("\0")) return "nul";
  if (LONE_SURROGATE.test(s)) return "lone_surrogate";
  return null;
}

/** `decodeURIComponent` that answers null instead of throwing on malformed or non-UTF-8 escapes. */
export function decodeComponent(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/** The first string (key or value) in a parsed JSON value that cannot be stored as text, with its place. */
export function findUnstorable(
  value: unknown,
  where = "body",
): { where: string; why: "nul" | "lone_surrogate" } | null {
  if (typeof value === "string") {
    const why = unstorableText(value);
    return why ? { where, why } : null;
  }
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = findUnstorable(v, `${where}[${i}]`);
      if (found) return found;
    }
    return null;
  }
  if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      const why = unstorableText(k);
      if (why) return { where: `${where} key`, why };
      const found = findUnstorable(v, `${where}.${k}`);
      if (found) return found;
    }
  }
  return null;
}

const describe = { nul: "a NUL character", lone_surrogate: "an unpaired UTF-16 surrogate" } as const;

function refuse(where: string, why: "nul" | "lone_surrogate" | "encoding"): ApiError {
  if (why === "encoding") {
    return new ApiError(400, "bad_encoding", `The ${where} is not valid percent-encoded UTF-8.`);
  }
  return new ApiError(400, "invalid_characters", `The ${where} contains ${describe[why]}.`);
}

/** Checks the raw path and query of a URL; returns the refusal or null. */
export function checkUrl(url: string): ApiError | null {
  const q = url.indexOf("?");
  const hash = url.indexOf("#");
  const end = hash >= 0 ? hash : url.length;
  const pathEnd = q >= 0 && q < end ? q : end;
  const afterScheme = url.indexOf("//");
  const pathStart = afterScheme >= 0 ? url.indexOf("/", afterScheme + 2) : url.indexOf("/");
  const rawPath = pathStart >= 0 && pathStart < pathEnd ? url.slice(pathStart, pathEnd) : "/";
  const path = decodeComponent(rawPath);
  if (path === null) return refuse("path", "encoding");
  const pathWhy = unstorableText(path);
  if (pathWhy) return refuse("path", pathWhy);
  if (q < 0 || q >= end) return null;
  for (const part of url.slice(q + 1, end).split("&")) {
    const decoded = decodeComponent(part.replace(/\+/g, " "));
    if (decoded === null) return refuse("query", "encoding");
    const why = unstorableText(decoded);
    if (why) return refuse("query", why);
  }
  return null;
}

const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\b/i;

/**
 * The guard: URL checks on every request; for a JSON body, a NUL or lone surrogate can only come
 * from a `\u` escape, so the body is parsed and walked only when it holds one. The body is read
 * through Hono's cache, so the route's validator does not read it again.
 */
export function inputGuard(): MiddlewareHandler {
  return async (c, next) => {
    const refused = checkUrl(c.req.url);
    if (refused) throw refused;
    const method = c.req.method;
    const mayHaveBody = method !== "GET" && method !== "HEAD" && method !== "OPTIONS";
    // `c.req.text()` without looking at `c.req.raw.body` first: on Node the adapter then reads
    // the socket straight into one buffer instead of building a Request and a web stream.
    if (mayHaveBody && JSON_TYPE.test(c.req.header("content-type") ?? "")) {
      const text = await c.req.text();
      // Without a content-length, a body limit further in reads the raw stream again: hand it
      // the same bytes.
      if (c.req.header("content-length") === undefined) c.req.raw = new Request(c.req.raw, { body: text });
      if (text.includes("\\u")) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined; // the route's validator answers malformed JSON
        }
        const found = findUnstorable(parsed);
        if (found) throw refuse(found.where, found.why);
      }
    }
    return next();
  };
}
