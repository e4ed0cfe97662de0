/**
 * The admin session cookie and its CSRF token, as pure functions over a signer. The cookie value
 * is `<expiresAt>.<sessionId>.<sig>`; the signature covers a tag of the admin key, so changing
 * the key ends every session signed under the old one.
 */
import type { MessageSigner } from "./voteToken.js";

export interface AdminSessionClaim {
  sessionId: string;
  /** Unix seconds. */
  expiresAt: number;
}

const SESSION_ID = /^[A-Za-z0-9_-]{16,64}$/;

const message = (keyTag: string, claim: AdminSessionClaim) =>
  `admin:${keyTag}:${claim.expiresAt}:${claim.sessionId}`;

export function adminCookieValue(signer: MessageSigner, keyTag: string, claim: AdminSessionClaim): string {
  return `${claim.expiresAt}.${claim.sessionId}.${signer.sign(message(keyTag, claim))}`;
}

/** The claim in a cookie value, or null when it is missing, malformed, not ours or expired. */
export function readAdminCookie(
  signer: MessageSigner,
  keyTag: string,
  value: string | undefined,
  nowSeconds: number,
): AdminSessionClaim | null {
  if (!value || value.length > 200) return null;
  const [exp, sessionId, sig, ...rest] = value.split(".");
  if (rest.length > 0 || !exp || !sessionId || !sig) return null;
  if (!/^\d{1,12}$/.test(exp) || !SESSION_ID.test(sessionId)) return null;
  const claim = { sessionId, expiresAt: Number(exp) };
  if (!signer.verify(message(keyTag, claim), sig)) return null;
  return claim.expiresAt > nowSeconds ? claim : null;
}

/** The session's CSRF token: a script on our origin reads it from the sign-in answer; another site cannot. */
export function adminCsrfToken(signer: MessageSigner, sessionId: string): string {
  return signer.sign(`admin-csrf:${sessionId}`);
}

export function checkAdminCsrf(signer: MessageSigner, sessionId: string, given: string | undefined): boolean {
  return Boolean(given) && signer.verify(`admin-csrf:${sessionId}`, given as string);
}
