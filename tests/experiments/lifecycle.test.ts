/**
 * The experiment lifecycle through the admin API on PGlite and PostgreSQL: start, the decision
 * rule over seeded votes (promote, retire, A/A, tournament, SRM, guardrails), manual stop and
 * promote, the loop round it belongs to, and what the report shows.
 */
import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { adapters, experimentDecisions, loopRounds } from "../../functions/src/db/schema.js";
import { decideRunningExperiment } from "../../functions/src/experiments/decide.js";
import { startExperiment } from "../../functions/src/experiments/start.js";
import { ADMIN_KEY, type Harness, openHarness, seedBaseModel, seedPromptSet } from "../api/votingHarness.js";
import { seedAdapters, seedExperimentVotes, seeded, seedVoters, type VoteSpec } from "./experimentVotes.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies in tests are read loosely
type Json = Record<string, any>;

describe.each(["pglite", "postgres"] as const)("experiments on %s", (db) => {
  let h: Harness;
  let app: Hono;
  let baseModelId: string;
  let promptIds: string[];
  let voterIds: string[];

  beforeAll(async () => {
    h = await openHarness(db, { EXPERIMENT_MIN_VOTES: "100", EXPERIMENT_MAX_VOTES: "1500" });
    app = createApp(h.deps);
    baseModelId = await seedBaseModel(h.deps);
    promptIds = (
      await seedPromptSet(h.deps, "exp-prompts", ["a red circle", "two blue squares", "a green triangle"])
    ).promptIds;
    voterIds = await seedVoters(h.deps, 40);
  });
  afterAll(async () => h?.close());

  const admin = (path: string, init: RequestInit = {}) =>
    app.request(path, {
      ...init,
      headers: { "x-admin-key": ADMIN_KEY, "content-type": "application/json", ...(init.headers ?? {}) },
    });
  const post = (path: string, body: unknown) => admin(path, { method: "POST", body: JSON.stringify(body) });

  /** A champion and challengers, registered; returns their ids by name. */
  async function setup(names: string[]): Promise<Record<string, string>> {
    const tag = randomUUID().slice(0, 8);
    const ids = Object.fromEntries(["champion", ...names].map((n) => [n, `ad_${n}_${tag}`]));
    await h.deps.db.orm
      .update(adapters)
      .set({ status: "retired" })
      .where(sql`${adapters.baseModelId} = ${baseModelId} and ${adapters.status} = 'champion'`);
    await seedAdapters(h.deps, baseModelId, Object.values(ids), ids.champion);
    return ids;
  }

  async function start(ids: Record<string, string>, names: string[], extra: Json = {}): Promise<string> {
    const res = await post("/api/admin/experiments", {
      arms: [
        { name: "champion", adapterId: ids.champion },
        ...names.map((n) => ({ name: n, adapterId: ids[n] })),
      ],
      ...extra,
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as Json).id;
  }

  const vote = (
    experimentId: string,
    ids: Record<string, string>,
    specs: VoteSpec[],
    n: number,
    seed: number,
  ) =>
    seedExperimentVotes(h.deps, {
      experimentId,
      baseModelId,
      promptIds,
      control: { name: "champion", adapterId: ids.champion as string },
      challengers: specs.map((s) => ({ ...s, adapterId: ids[s.challenger] as string })),
      voterIds,
      n,
      random: seeded(seed),
    });

  const decide = async (id: string) => {
    const res = await post(`/api/admin/experiments/${id}/decide`, {});
    return { status: res.status, body: (await res.json()) as Json };
  };
  const statusOf = async (id: string) =>
    (await h.deps.db.orm.select().from(adapters).where(eq(adapters.id, id)))[0]?.status;

  it("promotes a challenger the voters prefer, atomically, and records the numbers it used", async () => {
    const ids = await setup(["dpo"]);
    const id = await start(ids, ["dpo"]);
    await vote(id, ids, [{ challenger: "dpo", pWin: 0.5 }], 60, 1);
    expect((await decide(id)).body).toMatchObject({ action: "continue", recorded: true });
    await vote(id, ids, [{ challenger: "dpo", pWin: 0.75 }], 400, 2);
    const d = await decide(id);
    expect(d.body).toMatchObject({ action: "promote", arm: "dpo", recorded: true });
    expect(d.body.reason).toMatch(
      /^lower bound \d+\.\d % of P\(dpo ≻ control\) is above 50\.0 % after \d+ votes$/,
    );
    expect(await statusOf(ids.dpo as string)).toBe("champion");
    expect(await statusOf(ids.champion as string)).toBe("retired");

    const report = (await (await admin(`/api/admin/experiments/${id}`)).json()) as Json;
    expect(report.status).toBe("decided");
    const arm = report.arms.find((a: Json) => a.name === "dpo");
    expect(arm.state).toBe("promote");
    expect(arm.statistics.n).toBe(report.votes);
    expect(arm.statistics.lower).toBeGreaterThan(0.5);
    expect(arm.statistics.wins + arm.statistics.losses + arm.statistics.ties + arm.statistics.bothBad).toBe(
      arm.statistics.n,
    );
    expect(arm.overTime.length).toBeGreaterThan(10);
    expect(arm.overTime.at(-1).n).toBe(arm.statistics.n);
    expect(report.srm.map((s: Json) => s.check)).toEqual(["left/right placement"]);
    expect(report.byCategory).toHaveLength(1);
    expect(report.decisions.map((x: Json) => [x.action, x.actor])).toEqual([
      ["promote", "admin"],
      ["continue", "admin"],
      ["start", "admin"],
    ]);
    const promote = report.decisions[0];
    expect(promote.numbers.arms[0].lower).toBe(arm.statistics.lower);
    expect(promote.numbers.bar).toBe(0.5);
    expect(promote.numbers.settings).toMatchObject({ minVotes: 100, maxVotes: 1500, margin: 0, alpha: 0.05 });

    expect((await decide(id)).status).toBe(409);
    const list = (await (await admin("/api/admin/experiments?status=decided")).json()) as Json;
    expect(list.experiments.map((e: Json) => e.id)).toContain(id);
  });

  it("never promotes an A/A experiment (a challenger with the champion's weights), however often it looks", async () => {
    const ids = await setup(["same"]);
    const id = await start(ids, ["same"]);
    const seen: string[] = [];
    for (let batch = 0; batch < 15; batch++) {
      await vote(id, ids, [{ challenger: "same", pWin: 0.5 }], 100, 100 + batch);
      const d = await decide(id);
      seen.push(d.body.action);
      if (d.body.action !== "continue") break;
    }
    expect(seen).not.toContain("promote");
    expect(seen.at(-1)).toBe("retire");
    expect(await statusOf(ids.champion as string)).toBe("champion");
    expect(await statusOf(ids.same as string)).toBe("retired");
  });

  it("retires a challenger whose upper bound falls below the bar", async () => {
    const ids = await setup(["worse"]);
    const id = await start(ids, ["worse"]);
    await vote(id, ids, [{ challenger: "worse", pWin: 0.2 }], 300, 7);
    const d = await decide(id);
    expect(d.body.action).toBe("retire");
    expect(d.body.reason).toMatch(/^upper bound .* is below 50\.0 %/);
    expect(await statusOf(ids.worse as string)).toBe("retired");
    expect(await statusOf(ids.champion as string)).toBe("champion");
  });

  it("runs a tournament: the best arm that clears the bar wins; the weak arm is cut from traffic first", async () => {
    const ids = await setup(["weak", "good", "best"]);
    const id = await start(ids, ["weak", "good", "best"]);
    const specs = [
      { challenger: "weak", pWin: 0.05 },
      { challenger: "good", pWin: 0.6 },
      { challenger: "best", pWin: 0.7 },
    ];
    let d: Json = {};
    let cut = false;
    for (let batch = 0; batch < 20; batch++) {
      await vote(id, ids, specs, 90, 300 + batch);
      d = (await decide(id)).body;
      const [e] = await h.deps.db.orm
        .execute(sql`select allocation from experiments where id = ${id}`)
        .then((r) => (r as unknown as { rows: { allocation: number[] }[] }).rows);
      if (d.action === "continue" && e?.allocation[1] === 0) cut = true;
      if (d.action !== "continue") break;
    }
    expect(d.action).toBe("promote");
    expect(d.arm).toBe("best");
    expect(cut).toBe(true);
    expect(await statusOf(ids.best as string)).toBe("champion");
    expect(await statusOf(ids.good as string)).toBe("retired");
    expect(await statusOf(ids.weak as string)).toBe("retired");
    const report = (await (await admin(`/api/admin/experiments/${id}`)).json()) as Json;
    expect(report.alphaPerArm).toBeCloseTo(0.05 / 3, 10);
  });

  it("stops as untrustworthy on a sample ratio mismatch in left/right placement, changing no adapter", async () => {
    const ids = await setup(["dpo"]);
    const id = await start(ids, ["dpo"]);
    await vote(id, ids, [{ challenger: "dpo", pWin: 0.8, pLeft: 0.8 }], 400, 11);
    const d = await decide(id);
    expect(d.body.action).toBe("stop_untrustworthy");
    expect(d.body.reason).toMatch(/^sample ratio mismatch in left\/right placement/);
    expect(await statusOf(ids.dpo as string)).toBe("candidate");
    expect(await statusOf(ids.champion as string)).toBe("champion");
    const report = (await (await admin(`/api/admin/experiments/${id}`)).json()) as Json;
    expect(report.status).toBe("stopped");
  });

  it("stops as untrustworthy when a challenger's generations fail (guardrail)", async () => {
    const ids = await setup(["broken"]);
    const id = await start(ids, ["broken"]);
    await vote(id, ids, [{ challenger: "broken", pWin: 0.8, failRate: 0.2 }], 300, 13);
    const d = await decide(id);
    expect(d.body.action).toBe("stop_untrustworthy");
    expect(d.body.reason).toMatch(/^broken: \d+ of \d+ generations failed/);
    const report = (await (await admin(`/api/admin/experiments/${id}`)).json()) as Json;
    const arm = report.arms.find((a: Json) => a.name === "broken");
    expect(arm.guardrails.alarms.map((a: Json) => a.code)).toEqual(["generation_failures"]);
    expect(arm.guardrails.failureRate).toBeGreaterThan(0.05);
  });

  it("lets a person stop or promote, recorded as the admin's decision", async () => {
    const ids = await setup(["x", "y"]);
    const first = await start(ids, ["x"]);
    const stop = await post(`/api/admin/experiments/${first}/stop`, { reason: "wrong prompt set" });
    expect(stop.status).toBe(200);
    expect((await post(`/api/admin/experiments/${first}/stop`, {})).status).toBe(409);
    const second = await start(ids, ["x", "y"]);
    const bad = await post(`/api/admin/experiments/${second}/promote`, { arm: "z" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Json).error.code).toBe("unknown_arm");
    const ok = await post(`/api/admin/experiments/${second}/promote`, { arm: "y", reason: "visual review" });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: "decided", promotedAdapterId: ids.y });
    expect(await statusOf(ids.y as string)).toBe("champion");
    expect(await statusOf(ids.x as string)).toBe("retired");
    const rows = await h.deps.db.orm
      .select()
      .from(experimentDecisions)
      .where(
        sql`${experimentDecisions.experimentId} in (${first}, ${second}) and ${experimentDecisions.action} <> 'start'`,
      );
    expect(rows.map((r) => [r.action, r.actor, r.reason]).sort()).toEqual([
      ["promote", "admin", "visual review"],
      ["stop", "admin", "wrong prompt set"],
    ]);
  });

  it.each([
    [{ arms: [{ adapterId: null }] }, 400, "validation_failed"],
    [
      {
        arms: [
          { name: "a", adapterId: null },
          { name: "a", adapterId: null },
        ],
      },
      400,
      "invalid_experiment",
    ],
    [{ arms: [{ adapterId: null }, { adapterId: "ad_missing" }] }, 404, "adapter_not_found"],
    [
      { arms: [{ adapterId: null }, { name: "b", adapterId: null }], allocation: [1, 0] },
      400,
      "invalid_experiment",
    ],
    [
      {
        arms: [{ adapterId: null }, { name: "b", adapterId: null }],
        settings: { minVotes: 10, maxVotes: 5 },
      },
      400,
      "invalid_experiment",
    ],
  ])("refuses a bad start %j with one error shape", async (body, status, code) => {
    const res = await post("/api/admin/experiments", body);
    expect(res.status).toBe(status);
    const json = (await res.json()) as Json;
    expect(Object.keys(json)).toEqual(["error"]);
    if (status !== 400 || code !== "validation_failed") expect(json.error.code).toBe(code);
  });

  it("starts a loop round's experiment once, however many ticks ask, and finishes the round", async () => {
    const ids = await setup(["dpo"]);
    const roundId = `round_${randomUUID()}`;
    await h.deps.db.orm.insert(loopRounds).values({ id: roundId, baseModelId, status: "experimenting" });
    const req = {
      arms: [
        { name: "champion", adapterId: ids.champion as string },
        { name: "dpo", adapterId: ids.dpo as string },
      ],
    };
    const [a, b] = await Promise.all([
      startExperiment(h.deps, req, { origin: "loop", actor: "loop", roundId }),
      startExperiment(h.deps, req, { origin: "loop", actor: "loop", roundId }),
    ]);
    expect(a.id).toBe(b.id);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    await vote(a.id, ids, [{ challenger: "dpo", pWin: 0.8 }], 300, 21);
    const d = await decideRunningExperiment(h.deps, a.id, "loop");
    expect(d?.action).toBe("promote");
    const [round] = await h.deps.db.orm.select().from(loopRounds).where(eq(loopRounds.id, roundId));
    expect(round?.status).toBe("done");
    expect(round?.experimentId).toBe(a.id);
    expect(round?.note).toMatch(/promote dpo/);
  });
});
