/**
 * The dashboard's client of the admin API: the session cookie travels by itself (httpOnly,
 * same-origin); state-changing requests carry the session's CSRF token. A route the server does
 * not have (yet) answers `NotAvailable`, which pages show as such instead of failing.
 */
import type { AdminSession } from "../../../functions/src/api/adminSession.js";
import type { ApiErrorBody } from "../../../functions/src/api/votingSchemas.js";
import { ApiRequestError } from "../api.js";

export type { AdminSession };
export { ApiRequestError };

/** The server has no such route: the feature is not part of this deployment (yet). */
export class NotAvailable extends Error {}

let csrf: string | null = null;

async function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const headers = new Headers();
  if (body !== undefined) headers.set("content-type", "application/json");
  if (method !== "GET" && csrf) headers.set("x-csrf-token", csrf);
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiRequestError(0, "offline", "Cannot reach the server; check your connection.", 3);
  }
  const parsed = (await res.json().catch(() => null)) as unknown;
  if (!res.ok) {
    const err = (parsed as ApiErrorBody | null)?.error;
    if (res.status === 404 && (err?.code === "not_found" || !err)) {
      throw new NotAvailable(`${method} ${path} is not available on this server.`);
    }
    if (res.status === 401 && path !== "/api/admin/session") {
      // the session expired or was signed out elsewhere: the shell shows the sign-in form
      window.dispatchEvent(new CustomEvent("admin:signed-out"));
    }
    const retry = res.headers.get("retry-after");
    throw new ApiRequestError(
      res.status,
      err?.code ?? "http_error",
      err?.message ?? `The server answered ${res.status}.`,
      retry && /^\d+$/.test(retry) ? Number(retry) : null,
    );
  }
  return { status: res.status, body: parsed as T };
}

export const admin = {
  /** The current session, or null when not signed in. */
  async session(): Promise<AdminSession | null> {
    try {
      const { body } = await call<AdminSession>("GET", "/api/admin/session");
      csrf = body.csrfToken;
      return body;
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 401) return null;
      throw err;
    }
  },
  async signIn(key: string): Promise<AdminSession> {
    const { body } = await call<AdminSession>("POST", "/api/admin/session", { key });
    csrf = body.csrfToken;
    return body;
  },
  async signOut(): Promise<void> {
    await call("DELETE", "/api/admin/session");
    csrf = null;
  },
  async get<T>(path: string): Promise<T> {
    return (await call<T>("GET", path)).body;
  },
  /** GET that also reports the status (202 = still working). */
  async poll<T>(path: string): Promise<{ status: number; body: T }> {
    return call<T>("GET", path);
  },
  async post<T>(path: string, body: unknown = {}): Promise<T> {
    return (await call<T>("POST", path, body)).body;
  },
};
