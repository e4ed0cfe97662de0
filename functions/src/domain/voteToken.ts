/**
 * Signed tokens the voting API hands out, as pure functions over an HMAC signer:
 * - the vote token: pair id, voter id and expiry, signed when a pair is served to a voter, so a vote
 *   proves the pair was served to that voter without a database lookup;
 * - the earlier voter cookie format, still read (the cookie itself is `api/voterCookie.ts`);
 * - the CSRF token: derived from the voter id (signed double submit).
 */

export interface MessageSigner {
  sign(message: string): string;
  verify(message: string, signature: string): boolean;
}

export interface VoteClaim {
  pairId: string;
  voterId: string;
  /** Expiry, seconds since the epoch. */
  expiresAt: number;
}

/** What a pair or voter id in a signed token or cookie may look like. */
export const TOKEN_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** `v1.<pairId>.<voterId>.<exp>.<sig>` is ambiguous with dots in ids, so the claim is base64url JSON. */
export function issueVoteToken(signer: MessageSigner, claim: VoteClaim): string {
  const body = Buffer.from(JSON.stringify([claim.pairId, claim.voterId, claim.expiresAt])).toString(
    "base64url",
  );
  return `v1.${body}.${signer.sign(`vote:v1.${body}`)}`;
}

export type VoteTokenCheck =
  | { ok: true; claim: VoteClaim }
  | { ok: false; reason: "malformed" | "bad_signature" | "expired" };

/** Verifies the signature first, then the expiry against `nowSeconds`. */
export function readVoteToken(signer: MessageSigner, token: string, nowSeconds: number): VoteTokenCheck {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== "v1" || !parts[1] || !parts[2] || token.length > 1024) {
    return { ok: false, reason: "malformed" };
  }
  if (!signer.verify(`vote:v1.${parts[1]}`, parts[2])) return { ok: false, reason: "bad_signature" };
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
  } catch {
    return { ok: false, reason: "malformed" };
  }
  if (
    !Array.isArray(decoded) ||
    decoded.length !== 3 ||
    typeof decoded[0] !== "string" ||
    typeof decoded[1] !== "string" ||
    typeof decoded[2] !== "number" ||
    !TOKEN_ID.test(decoded[0]) ||
    !TOKEN_ID.test(decoded[1])
  ) {
    return { ok: false, reason: "malformed" };
  }
  const claim = { pairId: decoded[0], voterId: decoded[1], expiresAt: decoded[2] };
  if (claim.expiresAt < nowSeconds) return { ok: false, reason: "expired" };
  return { ok: true, claim };
}

/**
 * A voter cookie value in the earlier format, `<voterId>.<base64url HMAC of "voter:<voterId>">`
 * (cookies are now signed by `hono/cookie`; this one is what older browsers still hold).
 */
export function legacyVoterCookieValue(signer: MessageSigner, voterId: string): string {
  return `${voterId}.${signer.sign(`voter:${voterId}`)}`;
}

/** The voter id in an earlier-format cookie value, or null when it is missing, malformed or not ours. */
export function readLegacyVoterCookie(signer: MessageSigner, value: string | undefined): string | null {
  if (!value || value.length > 300) return null;
  const dot = value.lastIndexOf(".");
  if (dot <= 0) return null;
  const voterId = value.slice(0, dot);
  if (!TOKEN_ID.test(voterId)) return null;
  return signer.verify(`voter:${voterId}`, value.slice(dot + 1)) ? voterId : null;
}

/** The CSRF token of a voter: a browser script on our origin reads it; another origin cannot. */
export function csrfToken(signer: MessageSigner, voterId: string): string {
  return signer.sign(`csrf:${voterId}`);
}
