/**
 * The anonymous voter cookie, signed with `hono/cookie`'s signed cookies: the value is
 * `<voterId>.<base64 HMAC-SHA256 of the voter id>`, percent-encoded. Its key is derived from the
 * signing secret (an HMAC of a fixed label), so a voter cookie's signature is never the signature
 * of a vote token, CSRF token or signed URL, which are made with the secret itself.
 *
 * Cookies of the earlier format (`<voterId>.<base64url HMAC of "voter:<voterId>">`, see
 * `domain/voteToken.ts`) are still read, so voters who hold one keep their identity; the answer
 * re-issues their cookie in the current format.
 */
import type { Context } from "hono";
import { generateSignedCookie, getCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { type MessageSigner, readLegacyVoterCookie, TOKEN_ID } from "../domain/voteToken.js";

export const VOTER_COOKIE = "prefloop_voter";
const MAX_AGE_SECONDS = 365 * 24 * 3600;

/** Verified cookie values remembered (oldest dropped first): a voter sends the same value on every request. */
const VERIFIED_MAX = 10_000;

interface CookieKey {
  key: string;
  verified: Map<string, string>;
}

const keys = new WeakMap<MessageSigner, CookieKey>();

/** The key voter cookies are signed with (derived once per signer), with its verified values. */
function cookieKey(signer: MessageSigner): CookieKey {
  let key = keys.get(signer);
  if (key === undefined) {
    key = { key: signer.sign("key:voter-cookie"), verified: new Map() };
    keys.set(signer, key);
  }
  return key;
}

export interface VoterCookie {
  voterId: string;
  /** Signed in the earlier format: the answer should carry a re-issued cookie. */
  legacy: boolean;
}

/** The voter in the request's cookie, or null when it is missing, malformed, tampered with or not ours. */
export async function readVoterCookie(c: Context, signer: MessageSigner): Promise<VoterCookie | null> {
  const raw = getCookie(c, VOTER_COOKIE);
  if (raw === undefined) return null;
  const { key, verified } = cookieKey(signer);
  // Web Crypto's key import and verification cost ~70 µs a request; a value seen valid is valid.
  const known = verified.get(raw);
  if (known !== undefined) return { voterId: known, legacy: false };
  const signed = await getSignedCookie(c, key, VOTER_COOKIE);
  if (typeof signed === "string") {
    if (!TOKEN_ID.test(signed)) return null;
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
    verified.set(raw, signed);
    return { voterId: signed, legacy: false };
  }
  const legacy = readLegacyVoterCookie(signer, raw);
  return legacy ? { voterId: legacy, legacy: true } : null;
}

/** Sets the voter cookie: HttpOnly, SameSite=Lax, Secure when asked (production), one year, whole site. */
export async function setVoterCookie(
  c: Context,
  signer: MessageSigner,
  voterId: string,
  opts: { secure: boolean },
): Promise<void> {
  await setSignedCookie(c, VOTER_COOKIE, voterId, cookieKey(signer).key, {
    httpOnly: true,
    secure: opts.secure,
    sameSite: "Lax",
    path: "/",
    maxAge: MAX_AGE_SECONDS,
  });
}

/** `prefloop_voter=<signed value>` for a `cookie` header: voters the server itself drives (demo voters). */
export async function voterCookieHeader(signer: MessageSigner, voterId: string): Promise<string> {
  const cookie = await generateSignedCookie(VOTER_COOKIE, voterId, cookieKey(signer).key);
  return cookie.split(";")[0] as string;
}
