/**
 * Generations never get stuck: jobs lost between the commit and the send are sent again once a
 * lease passes without progress, hopeless generations are marked failed (pool pairs and voters'
 * own prompts alike), and pool depth counts only pairs that can still become ready.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { PairPool } from "../../functions/src/voting/pairPool.js";
import {
  Browser,
  type Harness,
  openHarness,
  runFakeGenerator,
  seedBaseModel,
  seedPromptSet,
} from "./votingHarness.js";

const rowsOf = async <T>(h: Harness, q: ReturnType<typeof sql>) =>
  ((await h.deps.db.orm.execute(q)) as unknown as { rows: T[] }).rows;

describe.each(["pglite", "postgres"] as const)("stuck generations on %s", (db) => {
  let h: Harness;
  let pool: PairPool;
  beforeAll(async () => {
    h = await openHarness(db, { POOL_DEPTH: "3" });
    await seedBaseModel(h.deps);
    pool = new PairPool(
      { db: h.deps.db, queue: h.deps.queue, log: h.deps.log, depth: 3 },
      { leaseSeconds: 600, giveUpSeconds: 3600 },
    );
  });
  afterAll(async () => h?.close());

  const scopeOf = async (name: string) => {
    const set = await seedPromptSet(h.deps, name, ["a red square", "a blue circle"]);
    return { experimentId: null, promptSetId: set.id };
  };
  const generationsOf = (promptSetId: string) =>
    rowsOf<{ id: string; status: string; error: string | null }>(
      h,
      sql`select g.id, g.status, g.error from generations g
          join pairs p on g.id in (p.generation_a_id, p.generation_b_id) where p.prompt_set_id = ${promptSetId}`,
    );
  const forget = (ids: string[]) =>
    h.deps.db.orm.execute(
      sql`delete from jobs where queue = 'generation' and id in (${sql.join(
        ids.map((id) => sql`${id}`),
        sql`, `,
      )})`,
    );
  const age = (ids: string[], column: "updated_at" | "created_at", minutes: number) =>
    h.deps.db.orm.execute(
      sql`update generations set ${sql.raw(column)} = now() - ${minutes} * interval '1 minute'
          where id in (${sql.join(
            ids.map((id) => sql`${id}`),
            sql`, `,
          )})`,
    );

  it("re-sends the jobs of generations whose send was lost, once a lease passes without progress", async () => {
    const scope = await scopeOf("lost-sends");
    await pool.topUp(scope);
    const gens = await generationsOf(scope.promptSetId);
    expect(gens).toHaveLength(6);
    const ids = gens.map((g) => g.id);
    await forget(ids); // a crash between the commit and the sends
    expect(await runFakeGenerator(h.deps)).toBe(0);
    // within the lease nothing is re-sent (a job may just be waiting its turn)
    expect(await pool.sweep()).toEqual({ resent: 0, failed: 0 });
    await age(ids, "updated_at", 11);
    expect(await pool.sweep()).toEqual({ resent: 6, failed: 0 });
    // the re-sent generations have made progress (updated_at): the next sweep leaves them be
    expect(await pool.sweep()).toEqual({ resent: 0, failed: 0 });
    expect(await runFakeGenerator(h.deps)).toBe(6);
    expect(await pool.counts(scope)).toEqual({ ready: 3, generating: 0, failed: 0 });
  });

  it("marks generations failed when no image came long after they were queued; the pool refills", async () => {
    const scope = await scopeOf("hopeless");
    await pool.topUp(scope);
    const gens = await generationsOf(scope.promptSetId);
    const stuck = gens.slice(0, 1).map((g) => g.id);
    await forget(stuck); // e.g. dead-lettered, or never sent
    await age(stuck, "created_at", 61);
    expect(await pool.sweep()).toEqual({ resent: 0, failed: 1 });
    const [row] = await rowsOf<{ status: string; error: string }>(
      h,
      sql`select status, error from generations where id = ${stuck[0]}`,
    );
    expect(row).toEqual({ status: "failed", error: "no image 3600 s after it was queued: given up" });
    // the pair with a failed side no longer counts as depth, so a top-up replaces it
    expect(await pool.size(scope, 10)).toBe(2);
    expect((await pool.counts(scope)).failed).toBe(1);
    expect(await pool.topUp(scope)).toEqual({ created: 1, reason: "created" });
    expect(await pool.retireFailed(scope)).toBe(1);
    await runFakeGenerator(h.deps);
    expect(await pool.counts(scope)).toEqual({ ready: 3, generating: 0, failed: 0 });
  });

  it("fails a voter's own prompt that never got its images, so the page says so (502) instead of waiting", async () => {
    // a pool that sweeps at every chance: polling the pair is what finds it stuck
    const sweeping = new PairPool(
      { db: h.deps.db, queue: h.deps.queue, log: h.deps.log, depth: 3 },
      { leaseSeconds: 600, giveUpSeconds: 3600, sweepEveryMs: 0 },
    );
    const app = createApp(h.deps, { voting: { pool: sweeping } });
    const b = new Browser(app);
    await b.session();
    const res = await b.post("/api/prompts", { text: "a lonely green triangle" });
    expect(res.status).toBe(202);
    const { pairId, poll } = (await res.json()) as { pairId: string; poll: string };
    const ids = (
      await rowsOf<{ a: string; b: string }>(
        h,
        sql`select generation_a_id as a, generation_b_id as b from pairs where id = ${pairId}`,
      )
    ).flatMap((r) => [r.a, r.b]);
    await forget(ids);
    expect((await b.request(poll)).status).toBe(202);
    await age(ids, "created_at", 61);
    const failed = await b.request(poll);
    expect(failed.status).toBe(502);
    expect(((await failed.json()) as { error: { code: string } }).error.code).toBe("generation_failed");
  });
});
