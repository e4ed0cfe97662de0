/**
 * Abuse of the public API, as an attacker would try it: forged, expired, replayed and
 * cross-voter vote tokens; admin routes without credentials; blob keys that try to leave their
 * prefix; oversized bodies; cookie POSTs without the CSRF token or from another site; one voter
 * bursting while the others carry on. Each is refused in the one error shape, and nothing of it
 * is stored.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { voterCookieHeader } from "../../functions/src/api/voterCookie.js";
import { createApp } from "../../functions/src/app.js";
import { csrfToken, issueVoteToken, legacyVoterCookieValue } from "../../functions/src/domain/voteToken.js";
import { Signer } from "../../functions/src/platform/signing.js";
import { ADMIN_KEY, Browser, type Harness, openHarness, seedReadyPairs } from "../api/votingHarness.js";

type Json = { error: { code: string; message: string } } & Record<string, unknown>;

const votesOf = async (h: Harness) =>
  (
    (await h.deps.db.orm.execute(sql`select pair_id, voter_id, choice from votes`)) as unknown as {
      rows: { pair_id: string; voter_id: string; choice: string }[];
    }
  ).rows;

async function refused(res: Response, status: number, code?: string): Promise<Json> {
  expect(res.status).toBe(status);
  const body = (await res.json()) as Json;
  expect(Object.keys(body)).toEqual(["error"]);
  if (code) expect(body.error.code).toBe(code);
  return body;
}

describe("abuse", () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  beforeAll(async () => {
    h = await openHarness("pglite", {
      RATE_LIMIT_VOTER_PER_MINUTE: "30",
      RATE_LIMIT_IP_PER_MINUTE: "100000",
    });
    app = createApp(h.deps);
    await seedReadyPairs(h.deps, 40, { promptSetName: "abuse" });
  });
  afterAll(async () => h?.close());

  const servedPair = async (b: Browser) => {
    const res = await b.request("/api/pairs/next?promptSet=abuse");
    expect(res.status).toBe(200);
    return (await res.json()) as { pairId: string; voteToken: string; left: { url: string } };
  };
  const voterIdOf = (b: Browser) => (b.cookie("prefloop_voter") ?? "").split(".")[0] as string;

  it("refuses forged, tampered, expired and cross-voter vote tokens and stores none of them", async () => {
    const b = new Browser(app);
    await b.session();
    const pair = await servedPair(b);
    const voterId = voterIdOf(b);
    const before = (await votesOf(h)).length;
    const forger = new Signer("an-attacker-guessing-the-secret-0123456789");
    const forged = issueVoteToken(forger, { pairId: pair.pairId, voterId, expiresAt: 2_000_000_000 });
    await refused(await b.post("/api/votes", { token: forged, choice: "left" }), 400, "invalid_token");
    const [v1, body, sig] = pair.voteToken.split(".");
    const otherClaim = Buffer.from(JSON.stringify([pair.pairId, voterId, 2_000_000_000])).toString(
      "base64url",
    );
    await refused(
      await b.post("/api/votes", { token: `${v1}.${otherClaim}.${sig}`, choice: "left" }),
      400,
      "invalid_token",
    );
    await refused(
      await b.post("/api/votes", { token: `${v1}.${body}`, choice: "left" }),
      400,
      "invalid_token",
    );
    // A token the server did sign, but whose time is up.
    const expired = issueVoteToken(h.deps.signer, { pairId: pair.pairId, voterId, expiresAt: 1 });
    await refused(await b.post("/api/votes", { token: expired, choice: "left" }), 410, "token_expired");
    // Another voter presents this voter's token (stolen or shared).
    const thief = new Browser(app);
    await thief.session();
    await refused(
      await thief.post("/api/votes", { token: pair.voteToken, choice: "left" }),
      403,
      "wrong_voter",
    );
    // A token for a pair that was never served (signed with the real key, made up pair).
    const madeUp = issueVoteToken(h.deps.signer, {
      pairId: "pair_made_up",
      voterId,
      expiresAt: 2_000_000_000,
    });
    await refused(await b.post("/api/votes", { token: madeUp, choice: "left" }), 404, "pair_not_found");
    expect((await votesOf(h)).length).toBe(before);
  });

  it("a replayed vote is stored once; replaying it with another choice is a conflict", async () => {
    const b = new Browser(app);
    await b.session();
    const pair = await servedPair(b);
    const first = await b.post("/api/votes", { token: pair.voteToken, choice: "right", decisionMs: 1500 });
    expect(first.status).toBe(201);
    const firstBody = (await first.json()) as { voteId: string };
    for (let i = 0; i < 5; i++) {
      const again = await b.post("/api/votes", { token: pair.voteToken, choice: "right", decisionMs: 1500 });
      expect(again.status).toBe(200);
      expect((await again.json()) as { voteId: string; duplicate: boolean }).toMatchObject({
        voteId: firstBody.voteId,
        duplicate: true,
      });
    }
    await refused(
      await b.post("/api/votes", { token: pair.voteToken, choice: "left" }),
      409,
      "vote_conflict",
    );
    const mine = (await votesOf(h)).filter((v) => v.pair_id === pair.pairId);
    expect(mine).toEqual([{ pair_id: pair.pairId, voter_id: voterIdOf(b), choice: "right" }]);
  });

  it("admin routes refuse requests without credentials or with a wrong key, and stay closed without ADMIN_API_KEY", async () => {
    const routes = [
      ["GET", "/api/admin/prompt-sets"],
      ["POST", "/api/admin/prompt-sets"],
      ["GET", "/api/admin/votes"],
      ["POST", "/api/admin/pool/top-up"],
      ["POST", "/api/admin/loop/tick"],
      ["GET", "/api/admin/voters"],
    ] as const;
    const sets = await h.deps.db.orm.execute(sql`select count(*)::int as n from prompt_sets`);
    for (const [method, path] of routes) {
      const body =
        method === "POST" ? JSON.stringify({ name: "x", format: "jsonl", content: '"a"' }) : undefined;
      const headers = { "content-type": "application/json" };
      await refused(await app.request(path, { method, headers, body }), 401);
      await refused(
        await app.request(path, { method, headers: { ...headers, "x-admin-key": "wrong" }, body }),
        401,
      );
      await refused(
        await app.request(path, {
          method,
          headers: { ...headers, authorization: `Bearer ${ADMIN_KEY.slice(0, -1)}` },
          body,
        }),
        401,
      );
    }
    expect(await h.deps.db.orm.execute(sql`select count(*)::int as n from prompt_sets`)).toEqual(sets);
    const closed = await openHarness("pglite", { ADMIN_API_KEY: "" });
    try {
      const res = await createApp(closed.deps).request("/api/admin/prompt-sets", {
        headers: { "x-admin-key": "" },
      });
      await refused(res, 403, "admin_disabled");
    } finally {
      await closed.close();
    }
  });

  it("blob URLs cannot leave their key: traversal, a signature for another key, a re-encoded key", async () => {
    const b = new Browser(app);
    await b.session();
    const pair = await servedPair(b);
    const url = new URL(pair.left.url);
    expect((await app.request(`${url.pathname}${url.search}`)).status).toBe(200);
    const attempts = [
      `/blobs/../signing-secret${url.search}`,
      `/blobs/%2e%2e/signing-secret${url.search}`,
      `/blobs/test-images/..%2f..%2fsigning-secret${url.search}`,
      `/blobs/test-images%2f..%2f..%2fsigning-secret${url.search}`,
      `/blobs//etc/passwd${url.search}`,
      `${url.pathname.replace(/[^/]+$/, "other.png")}${url.search}`,
      `${url.pathname}?exp=${url.searchParams.get("exp")}&sig=${"A".repeat(43)}`,
      `${url.pathname}?exp=99999999999&sig=${url.searchParams.get("sig")}`,
    ];
    for (const path of attempts) {
      const res = await app.request(path);
      expect([403, 404]).toContain(res.status);
      const text = await res.text();
      expect(text).not.toContain(h.deps.config.stateDir);
      expect(JSON.parse(text)).toHaveProperty("error.code");
    }
    await expect(h.deps.blobs.signedUrl("../signing-secret")).rejects.toThrow(/invalid blob key/);
  });

  it("oversized bodies are refused before they are read into a handler", async () => {
    const b = new Browser(app);
    await b.session();
    await refused(
      await b.post("/api/votes", { token: "x".repeat(17 * 1024), choice: "left" }),
      413,
      "too_large",
    );
    await refused(await b.post("/api/prompts", { text: "y".repeat(20 * 1024) }), 413, "too_large");
    const huge = JSON.stringify({ name: "huge", format: "jsonl", content: "z".repeat(33 * 1024 * 1024) });
    const res = await app.request("/api/admin/prompt-sets", {
      method: "POST",
      headers: { "x-admin-key": ADMIN_KEY, "content-type": "application/json" },
      body: huge,
    });
    await refused(res, 413, "too_large");
  });

  it("cookie POSTs need the CSRF token and our origin; a cross-site form post is refused", async () => {
    const b = new Browser(app);
    await b.session();
    const pair = await servedPair(b);
    const vote = { token: pair.voteToken, choice: "tie" };
    const before = (await votesOf(h)).length;
    await refused(await b.post("/api/votes", vote, { "x-csrf-token": "" }), 403, "csrf");
    const otherVoter = new Browser(app);
    const other = await otherVoter.session();
    await refused(await b.post("/api/votes", vote, { "x-csrf-token": other.csrfToken }), 403, "csrf");
    for (const origin of ["https://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:8787"]) {
      await refused(await b.post("/api/votes", vote, { origin }), 403, "bad_origin");
    }
    await refused(await b.post("/api/votes", vote, { "sec-fetch-site": "cross-site" }), 403, "bad_origin");
    // What a plain HTML form on another site can send: no custom header, a simple content type.
    const form = await b.request("/api/votes", {
      method: "POST",
      headers: { "content-type": "text/plain", origin: "https://evil.example" },
      body: JSON.stringify(vote),
    });
    await refused(form, 403);
    // A forged cookie for a made-up voter, signed with a guessed key.
    const guessed = new Signer("an-attacker-guessing-the-secret-0123456789");
    const forgedCookie = await voterCookieHeader(guessed, "v_attacker");
    const res = await app.request("/api/votes", {
      method: "POST",
      headers: {
        cookie: forgedCookie,
        "x-csrf-token": csrfToken(guessed, "v_attacker"),
        "content-type": "application/json",
      },
      body: JSON.stringify(vote),
    });
    await refused(res, 401, "no_session");
    expect((await votesOf(h)).length).toBe(before);
  });

  it("a forged, tampered or borrowed voter cookie is no cookie: POSTs refused, a GET starts a new voter", async () => {
    const b = new Browser(app);
    await b.session();
    const pair = await servedPair(b);
    const victim = new Browser(app);
    await victim.session();
    await servedPair(victim);
    const [id, signature] = decodeURIComponent(b.cookie("prefloop_voter") as string).split(".") as [
      string,
      string,
    ];
    const flipped = `${signature.startsWith("A") ? "B" : "A"}${signature.slice(1)}`;
    const guessed = new Signer("an-attacker-guessing-the-secret-0123456789");
    // a CSRF token is the secret's HMAC of `csrf:<voterId>`: as a cookie signature it must not pass
    const borrowed = Buffer.from(csrfToken(h.deps.signer, id), "base64url").toString("base64");
    const cookies = {
      "earlier format, guessed key": legacyVoterCookieValue(guessed, "v_attacker"),
      "another voter's id under this voter's signature": encodeURIComponent(
        `${voterIdOf(victim)}.${signature}`,
      ),
      "one signature character changed": encodeURIComponent(`${id}.${flipped}`),
      "the signature cut off": encodeURIComponent(`${id}.`),
      "no signature": id,
      "a CSRF token as the signature": encodeURIComponent(`csrf:${id}.${borrowed}`),
    };
    const before = (await votesOf(h)).length;
    for (const [what, value] of Object.entries(cookies)) {
      const post = await app.request("/api/votes", {
        method: "POST",
        headers: {
          cookie: `prefloop_voter=${value}`,
          "x-csrf-token": csrfToken(h.deps.signer, id),
          "content-type": "application/json",
        },
        body: JSON.stringify({ token: pair.voteToken, choice: "left" }),
      });
      expect(post.status, what).toBe(401);
      expect(((await post.json()) as Json).error.code, what).toBe("no_session");
      const visit = new Browser(app, { cookie: `prefloop_voter=${value}` });
      await visit.session();
      const fresh = voterIdOf(visit);
      expect(fresh, what).toMatch(/^v_[0-9a-f-]{36}$/);
      expect([id, voterIdOf(victim), "v_attacker"], what).not.toContain(fresh);
    }
    expect((await votesOf(h)).length).toBe(before);
  });

  it("a burst from one voter is limited while other voters carry on", async () => {
    const bursty = new Browser(app);
    await bursty.session();
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) {
      const res = await bursty.request("/api/pairs/next?promptSet=abuse");
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      await res.arrayBuffer();
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(25);
    const others = [new Browser(app), new Browser(app), new Browser(app)];
    for (const o of others) {
      await o.session();
      const res = await o.request("/api/pairs/next?promptSet=abuse");
      expect([200, 202, 503]).toContain(res.status);
      expect(res.status).not.toBe(429);
    }
  });
});
