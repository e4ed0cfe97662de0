/**
 * Which web origins may send state-changing requests: this server's own public origin
 * (`PUBLIC_URL`), the configured `CORS_ORIGINS`, and outside `prod`/`test` the loopback origins
 * a local dev server proxies from. Origins are compared whole (scheme, host and port), and the
 * `Host` header is never consulted: a client sets it to anything.
 */

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** The serialized origin of a URL (`https://a.example:8443`), or null when it has none. */
export function originOf(url: string): string | null {
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return u.origin;
  } catch {
    return null;
  }
}

export interface OriginPolicy {
  publicUrl: string;
  corsOrigins: readonly string[];
  /** Also accept http(s)://localhost, 127.0.0.1 and [::1] on any port. */
  allowLoopback: boolean;
}

/** Whether an `Origin` header value is one of ours. */
export function isAllowedOrigin(origin: string, policy: OriginPolicy): boolean {
  if (origin === "null") return false;
  const given = originOf(origin);
  if (given === null || given !== origin.replace(/\/$/, "").toLowerCase()) return false;
  if (given === originOf(policy.publicUrl)) return true;
  if (policy.corsOrigins.some((o) => originOf(o) === given)) return true;
  return policy.allowLoopback && LOOPBACK.has(new URL(given).hostname);
}
