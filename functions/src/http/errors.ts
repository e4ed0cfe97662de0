import type { Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The one error shape every endpoint answers with. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** An error meant for the client: a stable code, a sentence a person understands, a status. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

export function sendError(c: Context, err: ApiError): Response {
  for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
  return c.json(errorBody(err.code, err.message), err.status);
}

const httpCodes: Record<number, string> = {
  400: "invalid_request",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  413: "too_large",
  415: "unsupported_media_type",
};

/**
 * The error shape of a failure a framework middleware raised (`HTTPException`: malformed JSON,
 * a cross-site form POST refused by `hono/csrf`, ...). Its message is the framework's short
 * sentence, never a stack; its own response body is not passed on.
 */
export function fromHttpException(c: Context, err: HTTPException): Response {
  const status = (err.status >= 400 && err.status < 600 ? err.status : 500) as ContentfulStatusCode;
  const code = httpCodes[status] ?? (status >= 500 ? "internal" : "http_error");
  const message = status >= 500 ? "Something went wrong on our side; it has been logged." : err.message;
  return c.json(errorBody(code, message || "The request could not be read."), status);
}

/** PostgreSQL codes and socket errors that mean "the database is not reachable right now". */
const UNAVAILABLE_PG = /^(08\d{3}|57P0[123]|53300)$/;
const UNAVAILABLE_MESSAGE =
  /Connection terminated|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|timeout exceeded when trying to connect|Client has encountered a connection error|terminating connection/i;

/** Whether an error says a backing service (the database, blob store, queue) is unreachable, not that the request is wrong. */
export function isUnavailable(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e && i < 4; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (UNAVAILABLE_PG.test(code) || UNAVAILABLE_MESSAGE.test(code)))
      return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === "string" && UNAVAILABLE_MESSAGE.test(message)) return true;
  }
  return false;
}

type ErrorLog = {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn?(msg: string, fields?: Record<string, unknown>): void;
};

/** The innermost cause's message (a driver's "Connection terminated", not the failed query's text). */
function rootMessage(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 4 && (e as { cause?: unknown })?.cause; i++) e = (e as { cause?: unknown }).cause;
  return e instanceof Error ? e.message : String(e);
}

/**
 * The response to any error a handler or middleware threw: an `ApiError` as it says; a framework
 * `HTTPException` under 500 in the one shape; a backing service that is unreachable as 503 with
 * `Retry-After` (the client may retry the same request: votes and prompts are idempotent per
 * token); anything else logged with its stack and answered 500 without it.
 */
export function errorResponse(err: Error, c: Context, log: ErrorLog): Response {
  if (err instanceof ApiError) return sendError(c, err);
  if (err instanceof HTTPException && err.status < 500) return fromHttpException(c, err);
  if (isUnavailable(err)) {
    (log.warn ?? log.error).call(log, "backing service unavailable", {
      path: c.req.path,
      method: c.req.method,
      error: rootMessage(err),
    });
    c.header("retry-after", "1");
    return c.json(errorBody("unavailable", "The service is briefly unavailable; retry in a second."), 503);
  }
  log.error("unhandled error", {
    path: c.req.path,
    method: c.req.method,
    error: String(err),
    stack: err.stack,
  });
  return c.json(errorBody("internal", "Something went wrong on our side; it has been logged."), 500);
}

/** Answers every failure with the one error shape; unexpected errors are logged, never shown. */
export function installErrorHandlers(app: Hono, log: ErrorLog): Hono {
  app.notFound((c) => c.json(errorBody("not_found", `No route for ${c.req.method} ${c.req.path}.`), 404));
  app.onError((err, c) => errorResponse(err, c, log));
  return app;
}
