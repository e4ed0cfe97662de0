/**
 * The API process is SIGKILLed under steady vote load and started again on the same database
 * and port. Voters (real HTTP, cookies, CSRF) retry a vote with the same token until it is
 * acknowledged, as the web app does. Afterwards every acknowledged vote is stored exactly once,
 * nothing unacknowledged is stored, and the restarted server serves the same voters' cookies.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hono } from "hono";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser } from "../api/votingHarness.js";
import { freePort } from "../helpers/moto.js";
import { throwawayDatabase } from "../helpers/postgres.js";
import { type ServerProcess, startServerProcess } from "../helpers/serverProcess.js";
import { seedPairs } from "../helpers/sqlSeed.js";
import { type Acknowledged, voteLoop } from "./voteLoad.js";

const SECRET = "server-kill-test-signing-secret-0123456789";

/** A Browser that talks to a real server over HTTP instead of calling the app in process. */
const overHttp = (base: string) =>
  new Browser({
    request: (path: string, init?: RequestInit) => fetch(`${base}${path}`, init),
  } as unknown as Hono);

describe("SIGKILL of the API process under vote load", () => {
  let db: Awaited<ReturnType<typeof throwawayDatabase>>;
  let state: string;
  let port: number;
  let server: ServerProcess;
  const start = () =>
    startServerProcess({
      port,
      databaseUrl: db.url,
      stateDir: state,
      signingSecret: SECRET,
      env: {
        MODEL_DIR: join(state, "no-model"),
        RATE_LIMIT_VOTER_PER_MINUTE: "100000",
        RATE_LIMIT_IP_PER_MINUTE: "100000",
        PUBLIC_URL: `http://127.0.0.1:${port}`,
      },
    });

  beforeAll(async () => {
    db = await throwawayDatabase();
    state = mkdtempSync(join(tmpdir(), "prefloop-kill-"));
    port = await freePort();
    server = start();
    await server.ready(120_000);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await seedPairs(c, "killset", 600, false, 1);
    await c.end();
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it("loses no acknowledged vote, stores none twice, and serves again after the restart", async () => {
    const acknowledged: Acknowledged[] = [];
    const failures: { status: number; code: string }[] = [];
    const stop = { now: false };
    const voters = Array.from({ length: 6 }, () => overHttp(server.url));
    const loops = voters.map((b) =>
      voteLoop(b, "/api/pairs/next?promptSet=killset", { acknowledged, failures, stop }),
    );
    while (acknowledged.length < 30) await new Promise((r) => setTimeout(r, 50));
    await server.kill();
    const atKill = acknowledged.length;
    server = start();
    await server.ready(120_000);
    const restartedAt = Date.now();
    while (acknowledged.filter((a) => a.at > restartedAt).length < 30) {
      await new Promise((r) => setTimeout(r, 50));
    }
    stop.now = true;
    await Promise.all(loops);
    expect(atKill).toBeGreaterThanOrEqual(30);
    for (const f of failures) expect(f.status, JSON.stringify(f)).toBeLessThan(500);

    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const stored = (await c.query("select pair_id, voter_id, choice from votes")).rows as {
      pair_id: string;
      voter_id: string;
      choice: string;
    }[];
    await c.end();
    const key = (p: string, v: string, ch: string) => `${p}|${v}|${ch}`;
    const storedKeys = stored.map((r) => key(r.pair_id, r.voter_id, r.choice)).sort();
    const ackedKeys = [...new Set(acknowledged.map((a) => key(a.pairId, a.voterId, a.choice)))].sort();
    expect(new Set(storedKeys).size).toBe(storedKeys.length);
    expect(storedKeys).toEqual(ackedKeys);
  });
});
