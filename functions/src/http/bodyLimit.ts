/**
 * Request body limits that leave a keep-alive connection usable. `hono/body-limit` answers 413
 * without reading the body, and `@hono/node-server` then gives the unread body 500 ms to drain
 * before it destroys the socket, so a client's next request on that connection fails. Here an
 * over-limit body is read and discarded first (up to `DRAIN_CAP_BYTES`; past that the 413 says
 * `connection: close` and the socket is let go), and limits nest: an inner, smaller limit on a
 * route sees the size the outer one measured instead of reading the body again.
 */
import type { Context, MiddlewareHandler } from "hono";
import { errorBody } from "./errors.js";

/** Past this many bytes an oversized body is not drained: the connection is closed instead. */
export const DRAIN_CAP_BYTES = 64 * 1024 * 1024;

/** Body sizes already measured, per request. */
const measured = new WeakMap<object, number>();

const human = (bytes: number) =>
  bytes >= 1024 * 1024 ? `${Math.round(bytes / (1024 * 1024))} MB` : `${Math.round(bytes / 1024)} KB`;

function tooLarge(c: Context, maxSize: number, closeConnection: boolean): Response {
  if (closeConnection) c.header("connection", "close");
  return c.json(errorBody("too_large", `The request body is larger than ${human(maxSize)}.`), 413);
}

/** Reads and discards the rest of a body; false when it went past the drain cap (then cancelled). */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, alreadyRead: number): Promise<boolean> {
  let total = alreadyRead;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return true;
    total += value.length;
    if (total > DRAIN_CAP_BYTES) {
      await reader.cancel().catch(() => undefined);
      return false;
    }
  }
}

/** Refuses bodies over `maxSize` bytes with 413 `too_large`. */
export function limitBody(maxSize: number): MiddlewareHandler {
  return async (c, next) => {
    // Decided from the method and headers where possible: touching `c.req.raw.body` makes the
    // Node adapter build a full Request, a cost every request would pay.
    if (c.req.method === "GET" || c.req.method === "HEAD" || c.req.method === "OPTIONS") return next();
    const known = measured.get(c.req);
    if (known !== undefined) return known > maxSize ? tooLarge(c, maxSize, false) : next();
    const length = c.req.header("content-length");
    if (length !== undefined && c.req.header("transfer-encoding") === undefined) {
      const n = Number(length);
      if (Number.isSafeInteger(n) && n >= 0 && n <= maxSize) {
        measured.set(c.req, n);
        return next();
      }
      if (!Number.isSafeInteger(n) || n > DRAIN_CAP_BYTES) return tooLarge(c, maxSize, true);
      const body = c.req.raw.body;
      return body ? tooLarge(c, maxSize, !(await drain(body.getReader(), 0))) : next();
    }
    const body = c.req.raw.body;
    if (!body) return next();
    // No length given (chunked, or a Request built in process): read up to the limit, keep what
    // was read for the route.
    const reader = body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxSize) return tooLarge(c, maxSize, !(await drain(reader, size)));
      chunks.push(value);
    }
    const buffer = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      buffer.set(chunk, offset);
      offset += chunk.length;
    }
    c.req.raw = new Request(c.req.raw, { body: buffer });
    measured.set(c.req, size);
    return next();
  };
}

/**
 * The limit of each request: the exact paths in `overrides` get theirs, every other request
 * `defaultMax`. Mounted once in front of every route.
 */
export function bodyLimits(defaultMax: number, overrides: Record<string, number> = {}): MiddlewareHandler {
  const byPath = new Map(Object.entries(overrides).map(([p, n]) => [p, limitBody(n)]));
  const fallback = limitBody(defaultMax);
  return (c, next) => (byPath.get(c.req.path) ?? fallback)(c, next);
}
