import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { refreshVoterQuality } from "../../functions/src/quality/refresh.js";
import { type TableVote, writeVoteTable } from "../quality/voteTable.js";
import { ADMIN_KEY, type Harness, openHarness } from "./votingHarness.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies in tests are read loosely
type Json = Record<string, any>;

describe.each(["pglite", "postgres"] as const)("admin voters API on %s", (db) => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  const admin = (path: string, init: RequestInit = {}) =>
    app.request(path, { ...init, headers: { "x-admin-key": ADMIN_KEY, ...(init.headers ?? {}) } });

  beforeAll(async () => {
    h = await openHarness(db);
    const rows: TableVote[] = [];
    for (let i = 0; i < 40; i++) {
      rows.push({
        voter: "lefty",
        left: i % 2 ? "good" : "base",
        right: i % 2 ? "base" : "good",
        choice: "left",
      });
      rows.push({
        voter: "fair",
        left: i % 2 ? "good" : "base",
        right: i % 2 ? "base" : "good",
        choice: i % 2 ? "left" : "right",
      });
    }
    for (let i = 0; i < 4; i++)
      rows.push({
        voter: "fair",
        left: "base",
        right: "base",
        choice: i < 3 ? "right" : "left",
        kind: "gold",
        goldClean: "right",
      });
    await writeVoteTable(h.deps, rows);
    await refreshVoterQuality(h.deps);
    app = createApp(h.deps);
  });
  afterAll(async () => h?.close());

  it("lists voters flagged first, with reasons, gold accuracy and vote counts", async () => {
    const res = await admin("/api/admin/voters");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body.total).toBe(2);
    expect(body.voters.map((v: Json) => v.id)).toEqual(["lefty", "fair"]);
    const [lefty, fair] = body.voters as Json[];
    expect(lefty?.excluded).toBe(true);
    // Always left; and half the time against everyone else's clear preference for "good".
    expect(lefty?.qualityFlags.map((f: Json) => f.code)).toEqual(["one_side", "outlier"]);
    expect(lefty?.qualityFlags[0].reason).toMatch(/left image/);
    expect(lefty?.votes).toBe(40);
    expect(fair).toMatchObject({
      excluded: false,
      qualityFlags: [],
      goldVotes: 4,
      goldCorrect: 3,
      goldAccuracy: 0.75,
      votes: 44,
    });
    const flagged = (await (await admin("/api/admin/voters?filter=flagged")).json()) as Json;
    expect(flagged.voters.map((v: Json) => v.id)).toEqual(["lefty"]);
  });

  it("includes a flagged voter (flags stay visible) and excludes another, until told otherwise", async () => {
    const inc = (await (await admin("/api/admin/voters/lefty/include", { method: "POST" })).json()) as Json;
    expect(inc).toMatchObject({ id: "lefty", excluded: false, qualityOverride: "include" });
    expect(inc.qualityFlags.map((f: Json) => f.code)).toEqual(["one_side", "outlier"]);
    const exc = (await (await admin("/api/admin/voters/fair/exclude", { method: "POST" })).json()) as Json;
    expect(exc).toMatchObject({ id: "fair", excluded: true, qualityOverride: "exclude" });
    // A later check keeps the person's word.
    await writeVoteTable(
      h.deps,
      [{ voter: "lefty", left: "good", right: "base", choice: "left" }],
      new Date(),
    );
    await refreshVoterQuality(h.deps);
    const again = (await (await admin("/api/admin/voters/lefty")).json()) as Json;
    expect(again).toMatchObject({ excluded: false, qualityOverride: "include", votes: 41 });
    const excluded = (await (await admin("/api/admin/voters?filter=excluded")).json()) as Json;
    expect(excluded.voters.map((v: Json) => v.id)).toEqual(["fair"]);
  });

  it("answers unknown voters, bad queries and missing keys with the error shape", async () => {
    const missing = await admin("/api/admin/voters/nobody/include", { method: "POST" });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as Json).error.code).toBe("not_found");
    const bad = await admin("/api/admin/voters?limit=0");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Json).error.code).toBe("invalid_request");
    const anon = await app.request("/api/admin/voters");
    expect(anon.status).toBe(401);
    const spec = (await (await app.request("/openapi.json")).json()) as Json;
    expect(spec.paths["/api/admin/voters"]?.get).toBeDefined();
    expect(spec.paths["/api/admin/voters/{id}/exclude"]?.post).toBeDefined();
  });
});
