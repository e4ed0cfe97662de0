import { describe, expect, it } from "vitest";
import {
  csrfToken,
  issueVoteToken,
  legacyVoterCookieValue,
  readLegacyVoterCookie,
  readVoteToken,
} from "../../functions/src/domain/voteToken.js";
import { Signer } from "../../functions/src/platform/signing.js";

const signer = new Signer("s".repeat(32));
const other = new Signer("o".repeat(32));

describe("vote tokens", () => {
  const claim = { pairId: "pair_1.x", voterId: "v:42", expiresAt: 2_000 };
  const token = issueVoteToken(signer, claim);

  it.each([
    ["valid before expiry", token, 1_999, { ok: true, claim }],
    ["valid at expiry", token, 2_000, { ok: true, claim }],
    ["expired", token, 2_001, { ok: false, reason: "expired" }],
    ["signed with another key", issueVoteToken(other, claim), 0, { ok: false, reason: "bad_signature" }],
    [
      "tampered claim",
      token.replace(/^v1\.[^.]+/, `v1.${Buffer.from('["pair_2","v:42",2000]').toString("base64url")}`),
      0,
      { ok: false, reason: "bad_signature" },
    ],
    ["not a token", "hello", 0, { ok: false, reason: "malformed" }],
    ["wrong version", token.replace(/^v1/, "v2"), 0, { ok: false, reason: "malformed" }],
    ["empty", "", 0, { ok: false, reason: "malformed" }],
  ])("%s", (_name, t, now, expected) => {
    expect(readVoteToken(signer, t, now)).toEqual(expected);
  });

  it("rejects a signed claim whose ids are not ids", () => {
    const bad = issueVoteToken(signer, { pairId: "a b", voterId: "v", expiresAt: 9 });
    expect(readVoteToken(signer, bad, 0)).toEqual({ ok: false, reason: "malformed" });
  });
});

describe("earlier-format voter cookie and CSRF token", () => {
  it.each([
    [legacyVoterCookieValue(signer, "voter_abc"), "voter_abc"],
    [legacyVoterCookieValue(other, "voter_abc"), null],
    ["voter_abc", null],
    ["voter_abc.", null],
    [".sig", null],
    [undefined, null],
    [`${"x".repeat(400)}.sig`, null],
  ])("cookie %s → voter %s", (value, expected) => {
    expect(readLegacyVoterCookie(signer, value)).toBe(expected);
  });

  it("derives a CSRF token per voter and per key", () => {
    expect(csrfToken(signer, "a")).toBe(csrfToken(signer, "a"));
    expect(csrfToken(signer, "a")).not.toBe(csrfToken(signer, "b"));
    expect(csrfToken(signer, "a")).not.toBe(csrfToken(other, "a"));
  });
});
