/**
 * Admin sign-in: the key becomes a signed, expiring, httpOnly, SameSite=Strict cookie scoped to
 * /api/admin; cookie POSTs need the session's CSRF token and our origin; the key header keeps
 * working; sign-out clears the cookie. Also the dev admin key in the state folder and the first
 * start's prompt import.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_SESSION_SECONDS } from "../../functions/src/api/adminSession.js";
import { createApp } from "../../functions/src/app.js";
import { loadConfig } from "../../functions/src/config.js";
import { resolveAdminApiKey } from "../../functions/src/deps.js";
import { adminCookieValue, readAdminCookie } from "../../functions/src/domain/adminSessionToken.js";
import { importShapesOnFirstStart, signInLink } from "../../functions/src/local/firstStart.js";
import { Signer } from "../../functions/src/platform/signing.js";
import { listPromptSets } from "../../functions/src/voting/promptSets.js";
import { ADMIN_KEY, type Harness, openHarness, seedBaseModel } from "./votingHarness.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies in tests are read loosely
type Json = Record<string, any>;

/** `name=value` of the Set-Cookie header, and its attributes. */
function parseSetCookie(res: Response): { pair: string; attrs: string[] } {
  const raw = res.headers.get("set-cookie") ?? "";
  const [pair = "", ...attrs] = raw.split(";").map((s) => s.trim());
  return { pair, attrs };
}

describe("admin session", () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  const signIn = (key: string, headers: Record<string, string> = {}) =>
    app.request("/api/admin/session", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ key }),
    });

  beforeAll(async () => {
    h = await openHarness("pglite", { POOL_DEPTH: "2" });
    await seedBaseModel(h.deps);
    app = createApp(h.deps);
  });
  afterAll(async () => h?.close());

  it("exchanges the key for an httpOnly, SameSite=Strict cookie scoped to the admin API", async () => {
    const wrong = await signIn("not-the-key");
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as Json).error.code).toBe("unauthorized");
    expect(wrong.headers.get("set-cookie")).toBeNull();

    const res = await signIn(ADMIN_KEY);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body.signedIn).toBe(true);
    expect(body.via).toBe("cookie");
    expect(body.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const expires = Date.parse(body.expiresAt) - Date.now();
    expect(expires).toBeGreaterThan((ADMIN_SESSION_SECONDS - 60) * 1000);
    expect(expires).toBeLessThanOrEqual(ADMIN_SESSION_SECONDS * 1000);
    const { pair, attrs } = parseSetCookie(res);
    expect(pair).toMatch(/^prefloop_admin=\d+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(attrs).toEqual(
      expect.arrayContaining([
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/admin",
        `Max-Age=${ADMIN_SESSION_SECONDS}`,
      ]),
    );
    expect(pair).not.toContain(ADMIN_KEY);
  });

  it("opens admin GETs with the cookie; POSTs need the CSRF token and our origin", async () => {
    const signed = await signIn(ADMIN_KEY);
    const { csrfToken } = (await signed.json()) as Json;
    const cookie = parseSetCookie(signed).pair;

    const whoAmI = await app.request("/api/admin/session", { headers: { cookie } });
    expect(whoAmI.status).toBe(200);
    expect(((await whoAmI.json()) as Json).csrfToken).toBe(csrfToken);
    expect((await app.request("/api/admin/pool", { headers: { cookie } })).status).toBe(200);

    const post = (headers: Record<string, string>) =>
      app.request("/api/admin/pool/top-up", { method: "POST", headers: { cookie, ...headers } });
    const noToken = await post({});
    expect(noToken.status).toBe(403);
    expect(((await noToken.json()) as Json).error.code).toBe("csrf");
    const otherSession = await post({ "x-csrf-token": "A".repeat(43) });
    expect(otherSession.status).toBe(403);
    const crossSite = await post({ "x-csrf-token": csrfToken, origin: "https://evil.example" });
    expect(crossSite.status).toBe(403);
    expect(((await crossSite.json()) as Json).error.code).toBe("bad_origin");
    const ok = await post({ "x-csrf-token": csrfToken, origin: h.deps.config.publicUrl });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as Json).created).toBeGreaterThanOrEqual(0);
  });

  it("refuses tampered, expired and old-key cookies; the key header still works without a cookie", async () => {
    const cookie = parseSetCookie(await signIn(ADMIN_KEY)).pair;
    const [name, value = ""] = cookie.split("=");
    const [exp, id, sig] = value.split(".");
    const later = `${name}=${Number(exp) + 3600}.${id}.${sig}`;
    expect((await app.request("/api/admin/pool", { headers: { cookie: later } })).status).toBe(401);

    const signer = h.deps.signer;
    const now = Math.floor(Date.now() / 1000);
    const tag = "wrong-key-tag-00";
    const forged = adminCookieValue(signer, tag, { sessionId: "s".repeat(24), expiresAt: now + 600 });
    const forgedRes = await app.request("/api/admin/pool", {
      headers: { cookie: `prefloop_admin=${forged}` },
    });
    expect(forgedRes.status).toBe(401);

    const rotated = createApp({
      ...h.deps,
      config: { ...h.deps.config, adminApiKey: `${ADMIN_KEY}-rotated` },
    });
    expect((await rotated.request("/api/admin/pool", { headers: { cookie } })).status).toBe(401);

    expect((await app.request("/api/admin/pool", { headers: { "x-admin-key": ADMIN_KEY } })).status).toBe(
      200,
    );
    const wrongHeader = await app.request("/api/admin/pool", { headers: { cookie, "x-admin-key": "nope" } });
    expect(wrongHeader.status).toBe(401);
    const viaKey = (await (
      await app.request("/api/admin/session", { headers: { "x-admin-key": ADMIN_KEY } })
    ).json()) as Json;
    expect(viaKey).toEqual({ signedIn: true, via: "key", expiresAt: null, csrfToken: null });
    expect((await app.request("/api/admin/session")).status).toBe(401);
  });

  it("reads expiry and signature as pure functions", () => {
    const signer = new Signer("x".repeat(32));
    const claim = { sessionId: "abcdefghijklmnopqrstuv", expiresAt: 2_000 };
    const v = adminCookieValue(signer, "tag", claim);
    expect(readAdminCookie(signer, "tag", v, 1_999)).toEqual(claim);
    expect(readAdminCookie(signer, "tag", v, 2_000)).toBeNull();
    expect(readAdminCookie(signer, "other", v, 1_000)).toBeNull();
    expect(readAdminCookie(new Signer("y".repeat(32)), "tag", v, 1_000)).toBeNull();
    expect(readAdminCookie(signer, "tag", `${v}.x`, 1_000)).toBeNull();
    expect(readAdminCookie(signer, "tag", undefined, 1_000)).toBeNull();
  });

  it("signs out: needs the CSRF token, clears the cookie", async () => {
    const signed = await signIn(ADMIN_KEY);
    const { csrfToken } = (await signed.json()) as Json;
    const cookie = parseSetCookie(signed).pair;
    const refused = await app.request("/api/admin/session", { method: "DELETE", headers: { cookie } });
    expect(refused.status).toBe(403);
    const out = await app.request("/api/admin/session", {
      method: "DELETE",
      headers: { cookie, "x-csrf-token": csrfToken },
    });
    expect(out.status).toBe(200);
    expect(((await out.json()) as Json).signedIn).toBe(false);
    const cleared = parseSetCookie(out);
    expect(cleared.pair).toBe("prefloop_admin=");
    expect(cleared.attrs).toEqual(expect.arrayContaining(["Max-Age=0", "Path=/api/admin"]));
  });

  it("answers sign-in with one error shape when closed, malformed or hammered", async () => {
    const closed = createApp({ ...h.deps, config: { ...h.deps.config, adminApiKey: undefined } });
    const c = await closed.request("/api/admin/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: ADMIN_KEY }),
    });
    expect(c.status).toBe(403);
    expect(((await c.json()) as Json).error.code).toBe("admin_disabled");
    const bad = await app.request("/api/admin/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Json).error.code).toBeTypeOf("string");
    const fresh = createApp(h.deps);
    const codes: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await fresh.request("/api/admin/session", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: `guess-${i}` }),
      });
      codes.push(r.status);
    }
    expect(codes.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(codes.at(-1)).toBe(429);
  });

  it("lists the sign-in routes in /openapi.json", async () => {
    const doc = (await (await app.request("/openapi.json")).json()) as Json;
    expect(Object.keys(doc.paths["/api/admin/session"]).sort()).toEqual(["delete", "get", "post"]);
    expect(doc.components.securitySchemes.adminCookie).toEqual({
      type: "apiKey",
      in: "cookie",
      name: "prefloop_admin",
    });
  });
});

describe("first local start", () => {
  it("writes a dev admin key into the state folder once; test and prod keep the admin API closed", () => {
    const state = mkdtempSync(join(tmpdir(), "prefloop-admin-key-"));
    try {
      const dev = loadConfig({ PREFLOOP_ENV: "dev", STATE_DIR: state });
      const key = resolveAdminApiKey(dev);
      expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(readFileSync(join(state, "admin-key"), "utf8").trim()).toBe(key);
      expect(statSync(join(state, "admin-key")).mode & 0o777).toBe(0o600);
      expect(resolveAdminApiKey(dev)).toBe(key);
      expect(
        resolveAdminApiKey(loadConfig({ PREFLOOP_ENV: "dev", STATE_DIR: state, ADMIN_API_KEY: ADMIN_KEY })),
      ).toBe(ADMIN_KEY);
      const other = join(state, "t");
      expect(resolveAdminApiKey(loadConfig({ PREFLOOP_ENV: "test", STATE_DIR: other }))).toBeUndefined();
      expect(existsSync(join(other, "admin-key"))).toBe(false);
      expect(signInLink("http://127.0.0.1:8787/", "a+b")).toBe("http://127.0.0.1:8787/admin#key=a%2Bb");
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it("imports the shapes prompt set on an empty embedded database, queues pairs, and only once", async () => {
    const h = await openHarness("pglite", { POOL_DEPTH: "3" });
    try {
      await seedBaseModel(h.deps);
      expect(await importShapesOnFirstStart(h.deps)).toBe(2352);
      const sets = await listPromptSets(h.deps.db);
      expect(sets.map((s) => [s.name, s.prompts])).toEqual([["shapes", 2352]]);
      expect((await h.deps.queue.stats("generation")).ready).toBeGreaterThanOrEqual(2);
      expect(await importShapesOnFirstStart(h.deps)).toBeNull();
    } finally {
      await h.close();
    }
  });
});
