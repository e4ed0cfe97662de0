/** `GET /api/admin/loop`: champion, active round and runs, active experiment, votes, what happens next. */
import { randomUUID } from "node:crypto";
import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { experiments, loopRounds, trainingRuns } from "../../functions/src/db/schema.js";
import { ADMIN_KEY, type Harness, openHarness, seedBaseModel, seedPromptSet } from "../api/votingHarness.js";
import { seedAdapters, seedExperimentVotes, seeded, seedVoters } from "./experimentVotes.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies in tests are read loosely
type Json = Record<string, any>;

describe("loop status", () => {
  let h: Harness;
  let app: Hono;
  let baseModelId: string;
  beforeAll(async () => {
    h = await openHarness("pglite", {
      LOOP_MIN_VOTES: "50",
      LOOP_CHECK_SECONDS: "30",
      EXPERIMENT_MIN_VOTES: "100",
    });
    app = createApp(h.deps);
    baseModelId = await seedBaseModel(h.deps);
  });
  afterAll(async () => h?.close());

  const status = async () => {
    const res = await app.request("/api/admin/loop", { headers: { "x-admin-key": ADMIN_KEY } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    return body.baseModels.find((m: Json) => m.baseModelId === baseModelId);
  };

  it("says the loop collects votes while there are too few, and how many are missing", async () => {
    const s = await status();
    expect(s.champion).toBeNull();
    expect(s.usableVotesSinceChampionSnapshot).toBe(0);
    expect(s.activeRound).toBeNull();
    expect(s.activeExperiment).toBeNull();
    expect(s.next.action).toBe("collect_votes");
    expect(s.next.detail).toMatch(
      /^0 new usable votes of the 50 a round needs; 50 to go, no votes in the last 10 min$/,
    );
    expect(s.next.expectedAt).toBeNull();
  });

  it("shows a training round with its runs, then the running experiment and what the rule says", async () => {
    await seedAdapters(h.deps, baseModelId, ["ad_champ", "ad_dpo"], "ad_champ");
    const roundId = `round_${randomUUID()}`;
    await h.deps.db.orm.insert(loopRounds).values({ id: roundId, baseModelId, status: "training" });
    await h.deps.db.orm.insert(trainingRuns).values({
      id: `run_${randomUUID()}`,
      jobId: `job_${randomUUID()}`,
      roundId,
      baseModelId,
      adapterId: "ad_dpo",
      objective: "dpo",
      space: "latent",
      status: "running",
      progress: { step: 40, totalSteps: 100, stepsPerSecond: 6, etaSeconds: 10 },
    });
    let s = await status();
    expect(s.champion.adapterId).toBe("ad_champ");
    expect(s.activeRound).toMatchObject({ id: roundId, status: "training" });
    expect(s.activeRound.runs[0]).toMatchObject({
      objective: "dpo",
      status: "running",
      progress: { step: 40 },
    });
    expect(s.next).toMatchObject({ action: "wait_for_training", detail: "0 of 1 training run(s) finished" });
    expect(Date.parse(s.next.expectedAt)).toBeGreaterThan(Date.now());

    const experimentId = `exp_${randomUUID()}`;
    await h.deps.db.orm.insert(experiments).values({
      id: experimentId,
      name: "dpo vs champion",
      baseModelId,
      arms: [
        { name: "champion", adapterId: "ad_champ" },
        { name: "dpo:latent", adapterId: "ad_dpo" },
      ],
      allocation: [0.5, 0.5],
      status: "running",
      roundId,
      origin: "loop",
      settings: { minVotes: 100, maxVotes: 1000, margin: 0, alpha: 0.05 },
    });
    const set = await seedPromptSet(h.deps, "status-prompts", ["a red circle"]);
    await seedExperimentVotes(h.deps, {
      experimentId,
      baseModelId,
      promptIds: set.promptIds,
      control: { name: "champion", adapterId: "ad_champ" },
      challengers: [{ challenger: "dpo:latent", adapterId: "ad_dpo", pWin: 0.5 }],
      voterIds: await seedVoters(h.deps, 10),
      n: 40,
      random: seeded(5),
    });
    s = await status();
    expect(s.activeExperiment).toMatchObject({ id: experimentId, votes: 40 });
    expect(s.activeExperiment.arms[0]).toMatchObject({ arm: "dpo:latent", n: 40, state: "collecting" });
    expect(s.next.action).toBe("wait");
    expect(s.next.detail).toBe(
      `experiment ${experimentId} is collecting votes: dpo:latent: 40 of 100 votes before any decision`,
    );
  });
});
