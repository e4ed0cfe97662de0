/**
 * The database goes away under steady vote load and comes back (a TCP proxy between the app and
 * the real PostgreSQL server is cut for a while, as a restart looks to the app). During the
 * outage requests fail with 503 `unavailable` and Retry-After, never a 500; voters retry with the
 * same vote token; afterwards every vote that got a 2xx is stored exactly once, nothing else is
 * stored, and the app serves again without a restart.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { Browser, type Harness, openHarness, seedReadyPairs } from "../api/votingHarness.js";
import { serverUrl, throwawayDatabase } from "../helpers/postgres.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcpProxy.js";
import { type Acknowledged, voteLoop } from "./voteLoad.js";

describe("a PostgreSQL outage under vote load", () => {
  let db: Awaited<ReturnType<typeof throwawayDatabase>>;
  let proxy: TcpProxy;
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  beforeAll(async () => {
    db = await throwawayDatabase();
    const server = new URL(serverUrl);
    proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
    h = await openHarness("pglite", {
      DATABASE_URL: proxy.via(db.url),
      RATE_LIMIT_VOTER_PER_MINUTE: "100000",
      RATE_LIMIT_IP_PER_MINUTE: "100000",
    });
    app = createApp(h.deps);
    // Enough pairs that six fast voters never drain the pool in the test's 6 s.
    await seedReadyPairs(h.deps, 1500, { promptSetName: "outage", images: false });
  });
  afterAll(async () => {
    await h?.close();
    await proxy?.close();
    await new Promise((r) => setTimeout(r, 250));
    await db?.drop();
  });

  it("keeps every acknowledged vote exactly once across the outage and recovers by itself", async () => {
    const acknowledged: Acknowledged[] = [];
    const failures: { status: number; code: string }[] = [];
    const stop = { now: false };
    const voters = Array.from({ length: 6 }, () => new Browser(app));
    const loops = voters.map((b) =>
      voteLoop(b, "/api/pairs/next?promptSet=outage", { acknowledged, failures, stop }),
    );
    await new Promise((r) => setTimeout(r, 1500));
    const beforeCut = acknowledged.length;
    await proxy.cut();
    await new Promise((r) => setTimeout(r, 2000));
    await proxy.restore();
    await new Promise((r) => setTimeout(r, 2500));
    stop.now = true;
    await Promise.all(loops);

    expect(beforeCut).toBeGreaterThan(0);
    expect(failures.length).toBeGreaterThan(0); // the outage was seen
    for (const f of failures)
      expect(f, JSON.stringify(f)).toMatchObject({ status: 503, code: "unavailable" });
    const afterRestore = acknowledged.filter((a) => a.at > Date.now() - 2000).length;
    expect(afterRestore).toBeGreaterThan(0); // serving again without a restart

    const stored = (
      (await h.deps.db.orm.execute(sql`select pair_id, voter_id, choice from votes`)) as unknown as {
        rows: { pair_id: string; voter_id: string; choice: string }[];
      }
    ).rows;
    const key = (p: string, v: string, c: string) => `${p}|${v}|${c}`;
    const storedKeys = stored.map((r) => key(r.pair_id, r.voter_id, r.choice)).sort();
    const ackedKeys = [...new Set(acknowledged.map((a) => key(a.pairId, a.voterId, a.choice)))].sort();
    expect(new Set(storedKeys).size).toBe(storedKeys.length); // exactly once
    expect(storedKeys).toEqual(ackedKeys); // every acknowledged vote, and nothing else
  });
});
