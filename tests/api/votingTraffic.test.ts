/**
 * Traffic allocation through the HTTP API: the server serves data, experiment and gold pairs in
 * their configured shares; experiment pairs are paired (one prompt and seed) with arms recorded;
 * gold pairs are a generation and its degraded copy with the answer recorded; a new champion
 * renders new data pairs at once; a stopped experiment gets no more traffic.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureVoter } from "../../functions/src/api/voterSession.js";
import { createApp } from "../../functions/src/app.js";
import { adapters, experiments } from "../../functions/src/db/schema.js";
import { TrafficAllocator } from "../../functions/src/voting/allocator.js";
import { PairPool } from "../../functions/src/voting/pairPool.js";
import { seededRandom } from "../helpers/random.js";
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

/** The experiment a served pair belongs to, from the database: the public response never says. */
const experimentOf = async (h: Harness, pairId: string) =>
  (
    await rowsOf<{ experiment_id: string | null }>(
      h,
      sql`select experiment_id from pairs where id = ${pairId}`,
    )
  )[0]?.experiment_id ?? null;

/** |observed − expected| within `z` binomial standard deviations. */
function expectBinomial(observed: number, n: number, p: number, z = 4.5) {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(observed - n * p)).toBeLessThanOrEqual(z * sd);
}

describe.each(["pglite", "postgres"] as const)("traffic allocation on %s", (db) => {
  let h: Harness;
  let baseModelId: string;
  beforeAll(async () => {
    h = await openHarness(db, { POOL_DEPTH: "4", GOLD_PAIR_RATE: "0.1", EXPERIMENT_TRAFFIC_SHARE: "0.5" });
    baseModelId = await seedBaseModel(h.deps);
    await h.deps.db.orm.insert(adapters).values([
      { id: "ad_champion", baseModelId, blobPrefix: "adapters/champion/", status: "champion" },
      { id: "ad_challenger", baseModelId, blobPrefix: "adapters/challenger/" },
      { id: "ad_second", baseModelId, blobPrefix: "adapters/second/" },
    ]);
  });
  afterAll(async () => h?.close());

  const app = (opts: { random?: () => number } = {}) => {
    const pool = new PairPool(
      { db: h.deps.db, queue: h.deps.queue, log: h.deps.log, depth: h.deps.config.voting.poolDepth },
      { random: opts.random },
    );
    const allocator = new TrafficAllocator(
      { db: h.deps.db },
      pool,
      { goldRate: 0.1, experimentShare: 0.5 },
      { random: opts.random, experimentsTtlMs: 0 },
    );
    return { app: createApp(h.deps, { voting: { pool, allocator } }), pool, allocator };
  };

  it("serves data, experiment and gold pairs in their shares, whatever ?experiment= says, and never says which", async () => {
    const setName = "shares";
    const n = 300;
    const data = await seedReadyPairs(h.deps, n, { promptSetName: setName, images: false });
    await h.deps.db.orm.insert(experiments).values({
      id: "exp_shares",
      name: "shares",
      baseModelId,
      arms: [
        { name: "champion", adapterId: "ad_champion" },
        { name: "challenger", adapterId: "ad_challenger" },
      ],
      allocation: [0.5, 0.5],
      promptSetId: data.promptSetId,
      status: "running",
    });
    // the experiment's and gold pairs live in the same prompt set as the data pairs
    const seedInto = async (kind: "experiment" | "gold") => {
      const other = await seedReadyPairs(h.deps, n, {
        images: false,
        kind,
        experimentId: kind === "experiment" ? "exp_shares" : null,
        arms: kind === "experiment" ? ["champion", "challenger"] : undefined,
        adapters: kind === "experiment" ? ["ad_champion", "ad_challenger"] : undefined,
      });
      await h.deps.db.orm.execute(
        sql`update pairs set prompt_set_id = ${data.promptSetId} where prompt_set_id = ${other.promptSetId}`,
      );
    };
    await seedInto("experiment");
    await seedInto("gold");

    const { app: a } = app({ random: seededRandom(7) });
    const counts = { data: 0, experiment: 0, gold: 0 };
    const voters = Array.from({ length: 6 }, () => new Browser(a));
    for (const v of voters) await v.session();
    for (let i = 0; i < n; i++) {
      const v = voters[i % voters.length] as Browser;
      // the web page's old links passed ?experiment=: it no longer chooses anything
      const res = await v.request(
        `/api/pairs/next?promptSet=${setName}${i % 2 ? "&experiment=exp_shares" : ""}`,
      );
      expect(res.status).toBe(200);
      const pair = (await res.json()) as Json;
      const [row] = await rowsOf<{ kind: keyof typeof counts; experiment_id: string | null }>(
        h,
        sql`select kind, experiment_id from pairs where id = ${pair.pairId}`,
      );
      counts[row?.kind as keyof typeof counts]++;
      expect(row?.experiment_id).toBe(row?.kind === "experiment" ? "exp_shares" : null);
      // an experiment pair looks like any other: no experiment, kind, arm or adapter, no model in the alt text
      expect(Object.keys(pair).sort()).toEqual([
        "expiresAt",
        "left",
        "pairId",
        "prompt",
        "right",
        "voteToken",
      ]);
      expect(Object.keys(pair.left).sort()).toEqual(["alt", "height", "url", "width"]);
      expect(JSON.stringify(pair)).not.toMatch(/exp_shares|ad_champion|ad_challenger|experiment/);
    }
    expect(counts.data + counts.experiment + counts.gold).toBe(n);
    expectBinomial(counts.gold, n, 0.1);
    expectBinomial(counts.experiment, n, 0.45);
    expectBinomial(counts.data, n, 0.45);
    // sides drawn at serve time, about half each
    const [sides] = await rowsOf<{ a: number; total: number }>(
      h,
      sql`select count(*) filter (where left_is = 'a')::int as a, count(*)::int as total
          from pairs where prompt_set_id = ${data.promptSetId} and served_at is not null`,
    );
    expect(sides?.total).toBe(n);
    expectBinomial(sides?.a as number, n, 0.5);
    await h.deps.db.orm.execute(sql`update experiments set status = 'stopped' where id = 'exp_shares'`);
  });

  it("plans experiment pairs with one prompt and seed, the control against a challenger, arms and adapters recorded", async () => {
    const set = await seedPromptSet(h.deps, "ab-prompts", ["a small blue square", "two large red circles"]);
    await h.deps.db.orm.insert(experiments).values([
      {
        id: "exp_1",
        name: "two challengers vs champion",
        baseModelId,
        arms: [
          { name: "champion", adapterId: "ad_champion" },
          { name: "dpo", adapterId: "ad_challenger" },
          { name: "cpo", adapterId: "ad_second" },
        ],
        allocation: [0.5, 0.25, 0.25],
        promptSetId: set.id,
        status: "running",
      },
      {
        id: "exp_draft",
        name: "not started",
        baseModelId,
        arms: [
          { name: "a", adapterId: null },
          { name: "b", adapterId: "ad_challenger" },
        ],
        allocation: [0.5, 0.5],
        promptSetId: set.id,
        status: "draft",
      },
    ]);
    const { app: a } = app();
    const b = new Browser(a);
    await b.session();
    expect((await b.request("/api/pairs/next?promptSet=ab-prompts")).status).toBe(202);
    const planned = await rowsOf<{
      kind: string;
      arm_a: string;
      arm_b: string;
      seed_a: string;
      seed_b: string;
      adapter_a: string;
      adapter_b: string;
      same_prompt: boolean;
    }>(
      h,
      sql`select p.kind, p.arm_a, p.arm_b, ga.seed as seed_a, gb.seed as seed_b, ga.adapter_id as adapter_a,
            gb.adapter_id as adapter_b, ga.prompt_id = gb.prompt_id and ga.prompt_id = p.prompt_id as same_prompt
          from pairs p join generations ga on ga.id = p.generation_a_id join generations gb on gb.id = p.generation_b_id
          where p.experiment_id = 'exp_1'`,
    );
    expect(planned).toHaveLength(4);
    const byArm = { dpo: "ad_challenger", cpo: "ad_second" } as Record<string, string>;
    for (const p of planned) {
      expect(p.kind).toBe("experiment");
      expect(p.seed_a).toBe(p.seed_b);
      expect(p.same_prompt).toBe(true);
      expect(p.arm_a).toBe("champion");
      expect(p.adapter_a).toBe("ad_champion");
      expect(["dpo", "cpo"]).toContain(p.arm_b);
      expect(p.adapter_b).toBe(byArm[p.arm_b]);
    }
    // a draft experiment gets no pairs
    const [draft] = await rowsOf<{ n: number }>(
      h,
      sql`select count(*)::int as n from pairs where experiment_id = 'exp_draft'`,
    );
    expect(draft?.n).toBe(0);

    await runFakeGenerator(h.deps);
    const served: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await b.request("/api/pairs/next?promptSet=ab-prompts");
      if (res.status !== 200) break;
      const pair = (await res.json()) as Json;
      served.push((await experimentOf(h, pair.pairId)) ?? "-");
      expect(
        (await b.post("/api/votes", { token: pair.voteToken, choice: "left", decisionMs: 1500 })).status,
      ).toBe(201);
    }
    expect(served).toContain("exp_1");
    expect(served).toContain("-");
  });

  it("splits an experiment's pairs across its challengers by the allocation", async () => {
    await h.deps.db.orm.execute(
      sql`update experiments set allocation = '[0.4, 0.45, 0.15]' where id = 'exp_1'`,
    );
    const { pool } = app({ random: seededRandom(3) });
    const n = 200;
    expect(await pool.topUp({ experimentId: "exp_1", promptSetId: null, depth: 1000 }, n)).toMatchObject({
      created: n,
    });
    const arms = await rowsOf<{ arm_b: string; n: number }>(
      h,
      sql`select arm_b, count(*)::int as n from pairs
          where experiment_id = 'exp_1' and served_at is null group by arm_b order by arm_b`,
    );
    // allocation [0.4, 0.45, 0.15]: the challengers split the pairs 3:1 (arm a is always the control)
    const dpo = arms.find((a) => a.arm_b === "dpo")?.n ?? 0;
    const cpo = arms.find((a) => a.arm_b === "cpo")?.n ?? 0;
    expect(dpo + cpo).toBeGreaterThanOrEqual(n);
    expectBinomial(dpo, dpo + cpo, 0.75);
    await h.deps.db.orm.execute(
      sql`update pairs set served_at = now() where experiment_id = 'exp_1' and served_at is null`,
    );
  });

  it("serves no more pairs of a challenger whose allocation became 0; its unserved pairs stay unserved", async () => {
    await h.deps.db.orm.execute(
      sql`update experiments set allocation = '[0.4, 0.3, 0.3]' where id = 'exp_1'`,
    );
    const { app: a, pool } = app({ random: seededRandom(9) });
    await pool.topUp({ experimentId: "exp_1", promptSetId: null, depth: 12 });
    await runFakeGenerator(h.deps);
    const unservedCpo = async () =>
      (
        await rowsOf<{ n: number }>(
          h,
          sql`select count(*)::int as n from pairs where experiment_id = 'exp_1' and arm_b = 'cpo' and served_at is null`,
        )
      )[0]?.n;
    const before = await unservedCpo();
    expect(before).toBeGreaterThan(0);
    await h.deps.db.orm.execute(sql`update experiments set allocation = '[0.5, 0.5, 0]' where id = 'exp_1'`);
    const b = new Browser(a);
    await b.session();
    let experimentPairs = 0;
    for (let i = 0; i < 30; i++) {
      const res = await b.request("/api/pairs/next?promptSet=ab-prompts");
      if (res.status !== 200) continue;
      const pair = (await res.json()) as Json;
      if ((await experimentOf(h, pair.pairId)) !== "exp_1") continue;
      experimentPairs++;
      const [row] = await rowsOf<{ arm_b: string }>(
        h,
        sql`select arm_b from pairs where id = ${pair.pairId}`,
      );
      expect(row?.arm_b).toBe("dpo");
    }
    expect(experimentPairs).toBeGreaterThan(0);
    expect(await unservedCpo()).toBe(before);
    await h.deps.db.orm.execute(
      sql`update pairs set served_at = now() where experiment_id = 'exp_1' and served_at is null`,
    );
  });

  it("stops serving an experiment that is no longer running; its unserved pairs stay unserved", async () => {
    const { pool: running } = app();
    expect((await running.topUp({ experimentId: "exp_1", promptSetId: null })).reason).toMatch(
      /created|full/,
    );
    await runFakeGenerator(h.deps);
    const [before] = await rowsOf<{ n: number }>(
      h,
      sql`select count(*)::int as n from pairs where experiment_id = 'exp_1' and served_at is null`,
    );
    expect(before?.n).toBeGreaterThan(0);
    await h.deps.db.orm.execute(sql`update experiments set status = 'decided' where id = 'exp_1'`);
    const { app: a, pool } = app();
    const b = new Browser(a);
    await b.session();
    for (let i = 0; i < 10; i++) {
      const res = await b.request("/api/pairs/next?promptSet=ab-prompts");
      if (res.status === 200) expect(await experimentOf(h, ((await res.json()) as Json).pairId)).toBeNull();
      else await runFakeGenerator(h.deps);
    }
    const [after] = await rowsOf<{ n: number }>(
      h,
      sql`select count(*)::int as n from pairs where experiment_id = 'exp_1' and served_at is null`,
    );
    expect(after?.n).toBe(before?.n);
    expect(await pool.topUp({ experimentId: "exp_1", promptSetId: null })).toEqual({
      created: 0,
      reason: "not_running",
    });
  });

  it("makes gold pairs: a generation and its degraded copy (same prompt, seed, model), the clean side recorded", async () => {
    await seedPromptSet(h.deps, "gold-prompts", ["one green triangle"]);
    const { pool } = app();
    const scope = { experimentId: null, promptSetId: null, kind: "gold" as const };
    const [set] = await rowsOf<{ id: string }>(
      h,
      sql`select id from prompt_sets where name = 'gold-prompts'`,
    );
    expect(await pool.topUp({ ...scope, promptSetId: set?.id as string })).toEqual({
      created: 4,
      reason: "created",
    });
    const gold = await rowsOf<{
      kind: string;
      is_gold: boolean;
      gold_answer: string;
      a_id: string;
      b_id: string;
      a_deg: string | null;
      b_deg: string | null;
      a_from: string | null;
      b_from: string | null;
      same: boolean;
      adapter: string | null;
    }>(
      h,
      sql`select p.kind, p.is_gold, p.gold_answer, ga.id as a_id, gb.id as b_id,
            ga.degradation as a_deg, gb.degradation as b_deg, ga.degraded_from_id as a_from, gb.degraded_from_id as b_from,
            ga.seed = gb.seed and ga.prompt_id = gb.prompt_id and ga.steps = gb.steps and ga.guidance = gb.guidance
              and ga.adapter_id is not distinct from gb.adapter_id as same,
            ga.adapter_id as adapter
          from pairs p join generations ga on ga.id = p.generation_a_id join generations gb on gb.id = p.generation_b_id
          where p.prompt_set_id = ${set?.id}`,
    );
    expect(gold).toHaveLength(4);
    for (const g of gold) {
      expect(g.kind).toBe("gold");
      expect(g.is_gold).toBe(true);
      expect(g.same).toBe(true);
      expect(g.adapter).toBe("ad_champion");
      if (g.gold_answer === "a") {
        expect([g.a_deg, g.b_deg, g.b_from]).toEqual([null, "blur", g.a_id]);
      } else {
        expect(g.gold_answer).toBe("b");
        expect([g.b_deg, g.a_deg, g.a_from]).toEqual([null, "blur", g.b_id]);
      }
    }
  });

  it("renders new data pairs with a newly promoted champion at once; pairs already made keep their adapter", async () => {
    await seedPromptSet(h.deps, "champion-prompts", ["a yellow circle"]);
    const [set] = await rowsOf<{ id: string }>(
      h,
      sql`select id from prompt_sets where name = 'champion-prompts'`,
    );
    const scope = { experimentId: null, promptSetId: set?.id as string };
    const { pool } = app();
    await pool.topUp(scope);
    await h.deps.db.orm.transaction(async (tx) => {
      await tx.execute(sql`update adapters set status = 'retired' where id = 'ad_champion'`);
      await tx.execute(sql`update adapters set status = 'champion' where id = 'ad_challenger'`);
    });
    await runFakeGenerator(h.deps);
    const b = new Browser(app().app);
    await b.session();
    // drain two old pairs, then the top-up renders two new ones with the new champion
    const voterId = b.cookie("prefloop_voter")?.split(".")[0] as string;
    await ensureVoter(h.deps.db, voterId);
    for (let i = 0; i < 2; i++) expect(await pool.claim(scope, voterId)).not.toBeNull();
    const adaptersOf = async () =>
      rowsOf<{ adapter_id: string; n: number }>(
        h,
        sql`select g.adapter_id, count(*)::int as n from pairs p join generations g on g.id in (p.generation_a_id, p.generation_b_id)
            where p.prompt_set_id = ${set?.id} and p.kind = 'data' group by g.adapter_id order by g.adapter_id`,
      );
    expect(await adaptersOf()).toEqual([{ adapter_id: "ad_champion", n: 8 }]);
    await pool.topUp(scope);
    expect(await adaptersOf()).toEqual([
      { adapter_id: "ad_challenger", n: 4 },
      { adapter_id: "ad_champion", n: 8 },
    ]);
    // the old champion's unserved pairs are still served, labelled by their generations
    const [left] = await rowsOf<{ n: number }>(
      h,
      sql`select count(*)::int as n from pairs p join generations g on g.id = p.generation_a_id
          where p.prompt_set_id = ${set?.id} and p.served_at is null and g.adapter_id = 'ad_champion'`,
    );
    expect(left?.n).toBe(2);
  });
});
