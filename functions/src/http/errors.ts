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

/** Answers every failure with the one error shape; unexpected errors are logged, never shown. */
export function installErrorHandlers(
  app: Hono,
  log: { error(msg: string, fields?: Record<string, unknown>): void },
): Hono {
  app.notFound((c) => c.json(errorBody("not_found", `No route for ${c.req.method} ${c.req.path}.`), 404));
  app.onError((err, c) => {
    if (err instanceof ApiError) return sendError(c, err);
    if (err instanceof HTTPException && err.status < 500) return fromHttpException(c, err);
    log.error("unhandled error", {
      path: c.req.path,
      method: c.req.method,
      error: String(err),
      stack: err.stack,
    });
    return c.json(errorBody("internal", "Something went wrong on our side; it has been logged."), 500);
  });
  return app;
}
