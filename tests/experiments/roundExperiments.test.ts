/** The tick step that starts a round's experiment: champion vs every challenger the round registered. */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { experimentDecisions, experiments, loopRounds } from "../../functions/src/db/schema.js";
import { startRoundExperiments } from "../../functions/src/experiments/startRoundExperiments.js";
import { insertRuns } from "../../functions/src/training/runs.js";
import { type Harness, openHarness, seedBaseModel } from "../api/votingHarness.js";
import { seedAdapters } from "./experimentVotes.js";

describe("starting a round's experiment", () => {
  let h: Harness;
  let baseModelId: string;
  beforeAll(async () => {
    h = await openHarness("pglite", { EXPERIMENT_MIN_VOTES: "77", EXPERIMENT_MARGIN: "0.02" });
    baseModelId = await seedBaseModel(h.deps);
  });
  afterAll(async () => h?.close());

  const run = (
    roundId: string,
    adapterId: string,
    objective: string,
    space: string,
    status: "succeeded" | "failed",
  ) => ({
    id: `run_${randomUUID()}`,
    jobId: `job_${randomUUID()}`,
    roundId,
    baseModelId,
    adapterId,
    objective,
    space,
    status,
  });

  it("puts the champion against each registered challenger, one multi-arm experiment, once", async () => {
    await seedAdapters(h.deps, baseModelId, ["ad_champ", "ad_dpo", "ad_cpo"], "ad_champ");
    const roundId = `round_${randomUUID()}`;
    await h.deps.db.orm.insert(loopRounds).values({ id: roundId, baseModelId, status: "experimenting" });
    // As a round inserts them (insertRuns): in LOOP_OBJECTIVES' order, a millisecond apart.
    await insertRuns(h.deps.db.orm, [
      run(roundId, "ad_dpo", "dpo", "latent", "succeeded"),
      run(roundId, "ad_cpo", "cpo", "ncp", "succeeded"),
      run(roundId, "ad_never_registered", "rpo", "latent", "failed"),
    ]);
    const [first] = await startRoundExperiments(h.deps);
    expect(first).toMatchObject({ roundId, arms: 3 });
    const [e] = await h.deps.db.orm
      .select()
      .from(experiments)
      .where(eq(experiments.id, first?.experimentId as string));
    expect(e?.arms).toEqual([
      { name: "champion", adapterId: "ad_champ" },
      { name: "dpo:latent", adapterId: "ad_dpo" },
      { name: "cpo:ncp", adapterId: "ad_cpo" },
    ]);
    expect(e).toMatchObject({ status: "running", origin: "loop", roundId });
    expect(e?.settings).toMatchObject({ minVotes: 77, margin: 0.02 });
    const [round] = await h.deps.db.orm.select().from(loopRounds).where(eq(loopRounds.id, roundId));
    expect(round?.experimentId).toBe(e?.id);
    const decisions = await h.deps.db.orm
      .select()
      .from(experimentDecisions)
      .where(eq(experimentDecisions.experimentId, e?.id as string));
    expect(decisions.map((d) => [d.action, d.actor])).toEqual([["start", "loop"]]);
    expect(await startRoundExperiments(h.deps)).toEqual([]);
  });

  it("fails a round with no registered challenger instead of starting an empty experiment", async () => {
    await h.deps.db.orm.update(loopRounds).set({ status: "done" });
    const roundId = `round_${randomUUID()}`;
    await h.deps.db.orm.insert(loopRounds).values({ id: roundId, baseModelId, status: "experimenting" });
    expect(await startRoundExperiments(h.deps)).toEqual([{ roundId, experimentId: null, arms: 1 }]);
    const [round] = await h.deps.db.orm.select().from(loopRounds).where(eq(loopRounds.id, roundId));
    expect(round?.status).toBe("failed");
    expect(round?.note).toBe("no registered challenger to put against the champion");
  });
});
