import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { voterCookieHeader } from "../../functions/src/api/voterCookie.js";
import { createApp } from "../../functions/src/app.js";
import { csrfToken, issueVoteToken, legacyVoterCookieValue } from "../../functions/src/domain/voteToken.js";
import {
  Browser,
  type Harness,
  openHarness,
  runFakeGenerator,
  seedBaseModel,
  seedPromptSet,
  seedReadyPairs,
} from "./votingHarness.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies in tests are read loosely
type Json = Record<string, any>;
const rowsOf = async <T>(h: Harness, q: ReturnType<typeof sql>) =>
  ((await h.deps.db.orm.execute(q)) as unknown as { rows: T[] }).rows;

describe.each(["pglite", "postgres"] as const)("voting API on %s", (db) => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let setName: string;
  beforeAll(async () => {
    h = await openHarness(db, { PROMPT_BLOCKLIST: "forbidden, very bad", PROMPT_MAX_CHARS: "40" });
    app = createApp(h.deps);
    setName = "ready-set";
    await seedReadyPairs(h.deps, 8, { promptSetName: setName });
  });
  afterAll(async () => h?.close());

  it("creates an anonymous voter with a signed httpOnly SameSite cookie and returns a CSRF token", async () => {
    const b = new Browser(app);
    const res = await b.request("/api/session");
    expect(res.status).toBe(200);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("prefloop_voter="));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/; Path=\/(;|$)/);
    expect(cookie).toMatch(/; Max-Age=31536000(;|$)/);
    expect(cookie).not.toMatch(/Secure/);
    // hono/cookie's signed format: <voter id>.<base64 HMAC-SHA256>, percent-encoded
    const [id, signature] = decodeURIComponent(b.cookie("prefloop_voter") as string).split(".");
    expect(id).toMatch(/^v_[0-9a-f-]{36}$/);
    expect(signature).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const body = (await res.json()) as Json;
    expect(body).toEqual({ csrfToken: expect.any(String), voterVotes: 0, promptMaxChars: 40 });
    const voterId = b.cookie("prefloop_voter")?.split(".")[0];
    // a first visit writes nothing; the voter row comes with the first pair served to them
    const voterRow = () => rowsOf<{ id: string }>(h, sql`select id from voters where id = ${voterId}`);
    expect(await voterRow()).toEqual([]);
    // the same cookie keeps the same voter
    const again = await b.request("/api/session");
    expect(again.headers.getSetCookie()).toEqual([]);
    expect((await b.request(`/api/pairs/next?promptSet=${setName}`)).status).toBe(200);
    expect(await voterRow()).toEqual([{ id: voterId }]);
  });

  it("marks the voter cookie Secure in production", async () => {
    const prodApp = createApp({ ...h.deps, config: { ...h.deps.config, env: "prod" } });
    const res = await prodApp.request("/api/session");
    expect(res.headers.getSetCookie().find((c) => c.startsWith("prefloop_voter="))).toMatch(/Secure/);
  });

  it("keeps the voter of an earlier-format cookie and re-issues it as a signed hono cookie", async () => {
    await seedReadyPairs(h.deps, 2, { promptSetName: "legacy-cookie" });
    const voterId = `v_${randomUUID()}`;
    const legacy = `prefloop_voter=${legacyVoterCookieValue(h.deps.signer, voterId)}`;
    const current = await voterCookieHeader(h.deps.signer, voterId);
    expect(current).not.toBe(legacy);

    // a GET: same voter, same CSRF token, the cookie re-issued with the same attributes
    const b = new Browser(app, { cookie: legacy });
    const res = await b.request("/api/session");
    expect(res.status).toBe(200);
    expect(((await res.json()) as Json).csrfToken).toBe(csrfToken(h.deps.signer, voterId));
    const reissued = res.headers.getSetCookie().filter((c) => c.startsWith("prefloop_voter="));
    expect(reissued).toEqual([`${current}; Max-Age=31536000; Path=/; HttpOnly; SameSite=Lax`]);
    await b.session();
    const pair = (await (await b.request("/api/pairs/next?promptSet=legacy-cookie")).json()) as Json;
    const vote = await b.post("/api/votes", { token: pair.voteToken, choice: "left" });
    expect(vote.status).toBe(201);
    expect(vote.headers.getSetCookie()).toEqual([]); // the re-issued cookie is the current format

    // a POST straight from the earlier cookie is accepted too, and answered with the new cookie
    const second = (await (await b.request("/api/pairs/next?promptSet=legacy-cookie")).json()) as Json;
    const posted = await app.request("/api/votes", {
      method: "POST",
      headers: {
        cookie: legacy,
        "x-csrf-token": csrfToken(h.deps.signer, voterId),
        "content-type": "application/json",
      },
      body: JSON.stringify({ token: second.voteToken, choice: "right" }),
    });
    expect(posted.status).toBe(201);
    expect(((await posted.json()) as Json).voterVotes).toBe(2);
    expect(posted.headers.getSetCookie()).toEqual(reissued);
    const stored = await rowsOf<{ voter_id: string }>(
      h,
      sql`select voter_id from votes where pair_id in (${pair.pairId}, ${second.pairId})`,
    );
    expect(stored).toEqual([{ voter_id: voterId }, { voter_id: voterId }]);
  });

  it("serves a pair with signed image URLs and a vote token, records left/right, and stores the vote", async () => {
    const b = new Browser(app);
    await b.session();
    const res = await b.request(`/api/pairs/next?promptSet=${setName}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const pair = (await res.json()) as Json;
    expect(pair.prompt.text).toMatch(/^test prompt number \d$/);
    expect(pair.left.url).not.toBe(pair.right.url);
    expect(pair.left.alt).toContain(pair.prompt.text);
    const img = await app.request(new URL(pair.left.url).pathname + new URL(pair.left.url).search);
    expect(img.status).toBe(200);
    expect(img.headers.get("content-type")).toBe("image/png");

    const [row] = await rowsOf<{ left_is: string; served_to_voter_id: string; served_at: unknown }>(
      h,
      sql`select left_is, served_to_voter_id, served_at from pairs where id = ${pair.pairId}`,
    );
    expect(["a", "b"]).toContain(row?.left_is);
    expect(row?.served_to_voter_id).toBe(b.cookie("prefloop_voter")?.split(".")[0]);
    expect(row?.served_at).not.toBeNull();

    const vote = await b.post("/api/votes", { token: pair.voteToken, choice: "left", decisionMs: 1800 });
    expect(vote.status).toBe(201);
    const stored = (await vote.json()) as Json;
    expect(stored).toMatchObject({ pairId: pair.pairId, choice: "left", duplicate: false, voterVotes: 1 });
    const [v] = await rowsOf<{ choice: string; decision_ms: number; qc_flags: string[] }>(
      h,
      sql`select choice, decision_ms, qc_flags from votes where id = ${stored.voteId}`,
    );
    expect(v).toEqual({ choice: "left", decision_ms: 1800, qc_flags: [] });

    // idempotent repeat, then a conflicting second vote
    const again = await b.post("/api/votes", { token: pair.voteToken, choice: "left", decisionMs: 1800 });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ voteId: stored.voteId, duplicate: true, voterVotes: 1 });
    const other = await b.post("/api/votes", { token: pair.voteToken, choice: "right" });
    expect(other.status).toBe(409);
    expect(await other.json()).toEqual({ error: { code: "vote_conflict", message: expect.any(String) } });
    expect((await b.session()).voterVotes).toBe(1);
  });

  it("never serves the same pair twice: a voter drains the pool with distinct pairs", async () => {
    const scoped = await seedReadyPairs(h.deps, 5, { promptSetName: "drain-set" });
    const b = new Browser(app);
    await b.session();
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await b.request("/api/pairs/next?promptSet=drain-set");
      expect(res.status).toBe(200);
      seen.push(((await res.json()) as Json).pairId);
    }
    expect(new Set(seen)).toEqual(new Set(scoped.pairIds));
    // pool empty: top-up queues generations for this set and the client is told to come back
    const res = await b.request("/api/pairs/next?promptSet=drain-set");
    expect(res.status).toBe(202);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(await res.json()).toMatchObject({ status: "pending", retryAfterSeconds: 2 });
  });

  it("tops the pool up with generation jobs that follow the contract, then serves the generated pairs", async () => {
    await seedBaseModel(h.deps);
    await seedPromptSet(h.deps, "fresh-set", [
      "a red circle on a blue background",
      "two small green squares on a white background",
    ]);
    const b = new Browser(app);
    await b.session();
    const first = await b.request("/api/pairs/next?promptSet=fresh-set");
    expect(first.status).toBe(202);
    const gens = await rowsOf<{ status: string; seed: string; prompt_id: string; job_id: string }>(
      h,
      sql`select g.status, g.seed, g.prompt_id, g.job_id from generations g join pairs p on p.generation_a_id = g.id or p.generation_b_id = g.id
          join prompt_sets s on s.id = p.prompt_set_id where s.name = 'fresh-set' and p.kind = 'data'`,
    );
    expect(gens.length).toBe(2 * h.deps.config.voting.poolDepth);
    expect(gens.every((g) => g.status === "queued" && g.job_id)).toBe(true);
    expect(await runFakeGenerator(h.deps)).toBeGreaterThanOrEqual(gens.length);
    const next = await b.request("/api/pairs/next?promptSet=fresh-set");
    expect(next.status).toBe(200);
    const pair = (await next.json()) as Json;
    expect(["a red circle on a blue background", "two small green squares on a white background"]).toContain(
      pair.prompt.text,
    );
  });

  it("refuses votes without a session, without the CSRF token, from another origin, or for another voter", async () => {
    const b = new Browser(app);
    await b.session();
    const pair = (await (await b.request(`/api/pairs/next?promptSet=${setName}`)).json()) as Json;
    const body = { token: pair.voteToken, choice: "right", decisionMs: 900 };

    const anonymous = await app.request("/api/votes", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as Json).error.code).toBe("no_session");

    const noCsrf = await b.post("/api/votes", body, { "x-csrf-token": "" });
    expect(noCsrf.status).toBe(403);
    expect(((await noCsrf.json()) as Json).error.code).toBe("csrf");

    const evil = await b.post("/api/votes", body, { origin: "https://evil.example" });
    expect(evil.status).toBe(403);
    expect(((await evil.json()) as Json).error.code).toBe("bad_origin");

    const intruder = new Browser(app);
    await intruder.session();
    const stolen = await intruder.post("/api/votes", body);
    expect(stolen.status).toBe(403);
    expect(((await stolen.json()) as Json).error.code).toBe("wrong_voter");

    // The Origin is compared whole against PUBLIC_URL; a Host header naming it earns nothing.
    const spoofedHost = await b.post("/api/votes", body, { origin: "http://localhost", host: "localhost" });
    expect(spoofedHost.status).toBe(403);
    expect(((await spoofedHost.json()) as Json).error.code).toBe("bad_origin");

    const ok = await b.post("/api/votes", body, { origin: h.deps.config.publicUrl });
    expect(ok.status).toBe(201);
  });

  it("rejects tampered and expired tokens and malformed bodies with the one error shape", async () => {
    const b = new Browser(app);
    await b.session();
    const pair = (await (await b.request(`/api/pairs/next?promptSet=${setName}`)).json()) as Json;
    const tampered = await b.post("/api/votes", { token: `${pair.voteToken.slice(0, -2)}xx`, choice: "tie" });
    expect(tampered.status).toBe(400);
    expect(((await tampered.json()) as Json).error.code).toBe("invalid_token");

    const voterId = b.cookie("prefloop_voter")?.split(".")[0] as string;
    const expired = issueVoteToken(h.deps.signer, { pairId: pair.pairId, voterId, expiresAt: 1 });
    const late = await b.post("/api/votes", { token: expired, choice: "tie" });
    expect(late.status).toBe(410);
    expect(((await late.json()) as Json).error.code).toBe("token_expired");

    const badChoice = await b.post("/api/votes", { token: pair.voteToken, choice: "middle" });
    expect(badChoice.status).toBe(400);
    expect(await badChoice.json()).toEqual({
      error: { code: "invalid_request", message: expect.stringContaining("choice") },
    });

    const notJson = await b.request("/api/votes", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": b.csrf as string },
      body: "{nope",
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as Json).error.code).toBe("invalid_request");

    const fast = await b.post("/api/votes", { token: pair.voteToken, choice: "both_bad", decisionMs: 120 });
    expect(fast.status).toBe(201);
    const [v] = await rowsOf<{ qc_flags: string[] }>(
      h,
      sql`select qc_flags from votes where pair_id = ${pair.pairId}`,
    );
    expect(v?.qc_flags).toEqual(["too_fast"]);
  });

  it("queues a pair for a voter's own prompt, answers 202 while generating, then serves it only to them", async () => {
    const b = new Browser(app);
    await b.session();
    const blocked = await b.post("/api/prompts", { text: "something Forbidden here" });
    expect(blocked.status).toBe(422);
    expect(((await blocked.json()) as Json).error.code).toBe("prompt_blocked");
    const long = await b.post("/api/prompts", { text: "x".repeat(41) });
    expect(long.status).toBe(422);
    expect(((await long.json()) as Json).error.code).toBe("prompt_too_long");

    const res = await b.post("/api/prompts", { text: "  a purple   triangle " });
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as Json;
    expect(accepted).toMatchObject({ status: "generating", poll: `/api/pairs/${accepted.pairId}` });
    const pending = await b.request(accepted.poll);
    expect(pending.status).toBe(202);
    expect(pending.headers.get("retry-after")).toBe("1");
    // someone else cannot see it, nor is it in the pool
    const other = new Browser(app);
    await other.session();
    expect((await other.request(accepted.poll)).status).toBe(404);

    await runFakeGenerator(h.deps);
    const ready = await b.request(accepted.poll);
    expect(ready.status).toBe(200);
    const pair = (await ready.json()) as Json;
    expect(pair.prompt.text).toBe("a purple triangle");
    const again = (await (await b.request(accepted.poll)).json()) as Json;
    expect(again.left.url.split("?")[0]).toBe(pair.left.url.split("?")[0]); // same sides on reload
    const vote = await b.post("/api/votes", { token: pair.voteToken, choice: "right", decisionMs: 2000 });
    expect(vote.status).toBe(201);
    const [p] = await rowsOf<{ source: string; created_by_voter_id: string }>(
      h,
      sql`select source, created_by_voter_id from prompts where text = 'a purple triangle'`,
    );
    expect(p).toEqual({ source: "voter", created_by_voter_id: b.cookie("prefloop_voter")?.split(".")[0] });
  });

  it("reports a failed generation of a voter's pair as 502", async () => {
    const b = new Browser(app);
    await b.session();
    const accepted = (await (await b.post("/api/prompts", { text: "a doomed prompt" })).json()) as Json;
    await runFakeGenerator(h.deps, { fail: () => true });
    const res = await b.request(accepted.poll);
    expect(res.status).toBe(502);
    expect(((await res.json()) as Json).error.code).toBe("generation_failed");
  });

  it("hands out different pairs to concurrent voters", async () => {
    const { pairIds } = await seedReadyPairs(h.deps, 6, { promptSetName: "race-set" });
    const browsers = Array.from({ length: 10 }, () => new Browser(app));
    await Promise.all(browsers.map((b) => b.session()));
    const results = await Promise.all(browsers.map((b) => b.request("/api/pairs/next?promptSet=race-set")));
    const served = await Promise.all(
      results.filter((r) => r.status === 200).map(async (r) => ((await r.json()) as Json).pairId),
    );
    expect(served).toHaveLength(6);
    expect(new Set(served)).toEqual(new Set(pairIds));
  });

  it("ignores ?experiment= like any unknown query parameter (the server allocates traffic) and answers unknown prompt sets with 404", async () => {
    const b = new Browser(app);
    await b.session();
    const e = await b.request(`/api/pairs/next?experiment=nope&promptSet=${setName}&other=1`);
    expect(e.status).toBe(200);
    const pair = (await e.json()) as Json;
    expect(pair.pairId).toEqual(expect.any(String));
    expect(pair).not.toHaveProperty("experimentId");
    const s = await b.request("/api/pairs/next?promptSet=nope");
    expect(s.status).toBe(404);
    expect(((await s.json()) as Json).error.code).toBe("prompt_set_not_found");
  });
});

describe("voting API limits and documents (PGlite)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("pglite", { RATE_LIMIT_VOTER_PER_MINUTE: "3", RATE_LIMIT_PROMPTS_PER_HOUR: "1" });
    await seedReadyPairs(h.deps, 6, { promptSetName: "limits" });
  });
  afterAll(async () => h?.close());

  it("rate-limits a voter with 429, Retry-After and the error shape; other voters are unaffected", async () => {
    const app = createApp(h.deps);
    const b = new Browser(app);
    await b.session();
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await b.request("/api/pairs/next?promptSet=limits");
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    // one token every 20 s; a slow machine may already have refilled part of it
    const retryAfter = Number(last?.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(15);
    expect(retryAfter).toBeLessThanOrEqual(20);
    expect(await last?.json()).toEqual({
      error: { code: "rate_limited", message: expect.stringMatching(new RegExp(`${retryAfter} seconds`)) },
    });
    const other = new Browser(app);
    await other.session();
    expect((await other.request("/api/pairs/next?promptSet=limits")).status).toBe(200);
  });

  it("limits written prompts per voter", async () => {
    const app = createApp(h.deps);
    const b = new Browser(app);
    await b.session();
    expect((await b.post("/api/prompts", { text: "one" })).status).toBe(202);
    const second = await b.post("/api/prompts", { text: "two" });
    expect(second.status).toBe(429);
    expect(Number(second.headers.get("retry-after"))).toBeGreaterThan(60);
  });

  it("rate-limits per IP across voters (Node server socket address)", async () => {
    const limited = await openHarness("pglite", { RATE_LIMIT_IP_PER_MINUTE: "2" });
    try {
      const app = createApp(limited.deps);
      const env = { incoming: { socket: { remoteAddress: "203.0.113.9" } } };
      const codes: number[] = [];
      for (let i = 0; i < 3; i++) codes.push((await app.request("/api/session", {}, env)).status);
      expect(codes).toEqual([200, 200, 429]);
      expect(
        (await app.request("/api/session", {}, { incoming: { socket: { remoteAddress: "203.0.113.10" } } }))
          .status,
      ).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it("keeps CORS closed by default and opens it only to configured origins", async () => {
    const closed = await createApp(h.deps).request("/api/session", {
      headers: { origin: "https://other.example" },
    });
    expect(closed.headers.get("access-control-allow-origin")).toBeNull();
    const open = createApp({
      ...h.deps,
      config: { ...h.deps.config, web: { ...h.deps.config.web, corsOrigins: ["https://other.example"] } },
    });
    const res = await open.request("/api/session", { headers: { origin: "https://other.example" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("https://other.example");
    const denied = await open.request("/api/session", { headers: { origin: "https://third.example" } });
    expect(denied.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("serves the OpenAPI document with every voting and admin path", async () => {
    const res = await createApp(h.deps).request("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Json;
    expect(doc.openapi).toBe("3.1.0");
    // other resources (experiments, adapters, the loop ...) add their own paths to the same document
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/api/admin/playground",
        "/api/admin/playground/{id}",
        "/api/admin/pool",
        "/api/admin/pool/top-up",
        "/api/admin/prompt-sets",
        "/api/admin/prompt-sets/shapes",
        "/api/admin/session",
        "/api/admin/votes",
        "/api/pairs/next",
        "/api/pairs/{pairId}",
        "/api/prompts",
        "/api/session",
        "/api/votes",
      ]),
    );
    expect(doc.components.schemas.Pair.properties.voteToken).toBeDefined();
    // a voter's pair never says which experiment, arm or model it comes from, and cannot ask for one
    expect(Object.keys(doc.components.schemas.Pair.properties).sort()).toEqual([
      "expiresAt",
      "left",
      "pairId",
      "prompt",
      "right",
      "voteToken",
    ]);
    const nextParams = (doc.paths["/api/pairs/next"].get.parameters as Json[]).map((p) => p.name);
    expect(nextParams).toEqual(["promptSet"]);
    expect(doc.components.securitySchemes.voterCookie).toMatchObject({
      in: "cookie",
      name: "prefloop_voter",
    });
  });

  it("answers 503 when there is no model or no prompt to generate from", async () => {
    const empty = await openHarness("pglite");
    try {
      const b = new Browser(createApp(empty.deps));
      await b.session();
      const noModel = await b.request("/api/pairs/next");
      expect(noModel.status).toBe(503);
      expect(((await noModel.json()) as Json).error.code).toBe("no_model");
      await seedBaseModel(empty.deps);
      await new Promise((r) => setTimeout(r, 1100)); // the forced top-up waits a second between tries
      const noPrompts = await b.request("/api/pairs/next");
      expect(noPrompts.status).toBe(503);
      expect(((await noPrompts.json()) as Json).error.code).toBe("pool_empty");
    } finally {
      await empty.close();
    }
  });
});
