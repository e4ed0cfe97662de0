/**
 * EXPERIMENT_GUARDRAIL_* through the decision on PGlite and PostgreSQL: the limit an experiment
 * started with decides it (a challenger with 20 % failed generations is stopped under the default
 * 5 %, promoted under 30 %), whatever the configuration says later, and every decision records
 * the limits it used (the loop's and an admin's).
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { experimentDecisions } from "../../functions/src/db/schema.js";
import { DEFAULT_GUARDRAILS } from "../../functions/src/domain/experimentDecision.js";
import { decideRunningExperiment } from "../../functions/src/experiments/decide.js";
import { startExperiment } from "../../functions/src/experiments/start.js";
import { stopExperiment } from "../../functions/src/experiments/stop.js";
import { type Harness, openHarness, seedBaseModel, seedPromptSet } from "../api/votingHarness.js";
import { seedAdapters, seedExperimentVotes, seeded, seedVoters } from "./experimentVotes.js";

// biome-ignore lint/suspicious/noExplicitAny: stored numbers are read loosely
type Json = Record<string, any>;

describe.each(["pglite", "postgres"] as const)("guardrail limits in decisions on %s", (db) => {
  let h: Harness;
  let baseModelId: string;
  let promptIds: string[];
  let voterIds: string[];

  beforeAll(async () => {
    h = await openHarness(db, {
      EXPERIMENT_MIN_VOTES: "100",
      EXPERIMENT_MAX_VOTES: "1500",
      EXPERIMENT_GUARDRAIL_FAILURE_RATE: "0.3",
    });
    baseModelId = await seedBaseModel(h.deps);
    promptIds = (await seedPromptSet(h.deps, "guardrail-prompts", ["a red circle", "two blue squares"]))
      .promptIds;
    voterIds = await seedVoters(h.deps, 40);
  });
  afterAll(async () => h?.close());

  /** An experiment champion vs `flaky` started under `guardrails`, with 300 votes where 20 % of flaky's generations fail. */
  async function experimentWithFailures(guardrails: typeof DEFAULT_GUARDRAILS) {
    const tag = randomUUID().slice(0, 8);
    const ids = { champion: `ad_champion_${tag}`, flaky: `ad_flaky_${tag}` };
    await seedAdapters(h.deps, baseModelId, Object.values(ids));
    const config = { experiments: { ...h.deps.config.experiments, guardrails } };
    const e = await startExperiment(
      { db: h.deps.db, config },
      {
        arms: [
          { name: "champion", adapterId: ids.champion },
          { name: "flaky", adapterId: ids.flaky },
        ],
      },
      { origin: "manual", actor: "admin" },
    );
    expect(e.settings.maxFailureRate).toBe(guardrails.maxFailureRate);
    await seedExperimentVotes(h.deps, {
      experimentId: e.id,
      baseModelId,
      promptIds,
      control: { name: "champion", adapterId: ids.champion },
      challengers: [{ challenger: "flaky", adapterId: ids.flaky, pWin: 0.8, failRate: 0.2 }],
      voterIds,
      n: 300,
      random: seeded(13),
    });
    return e.id;
  }

  const decisions = (experimentId: string) =>
    h.deps.db.orm
      .select()
      .from(experimentDecisions)
      .where(eq(experimentDecisions.experimentId, experimentId));

  it("reads the limits from the configuration", () => {
    expect(h.deps.config.experiments.guardrails).toEqual({ ...DEFAULT_GUARDRAILS, maxFailureRate: 0.3 });
  });

  it.each([
    ["the configured 30 %", 0.3, "promote", []],
    [
      "the default 5 %, frozen at its start",
      DEFAULT_GUARDRAILS.maxFailureRate,
      "stop_untrustworthy",
      ["generation_failures"],
    ],
  ] as const)(
    "an experiment started under %s (%d) is decided: %s",
    async (_, maxFailureRate, action, alarms) => {
      const id = await experimentWithFailures({ ...DEFAULT_GUARDRAILS, maxFailureRate });
      const d = await decideRunningExperiment(h.deps, id, "loop");
      expect(d?.action).toBe(action);
      const rows = await decisions(id);
      expect(rows.map((r) => r.action).sort()).toEqual([action, "start"].sort());
      const numberOf = (a: string) => (rows.find((r) => r.action === a)?.numbers ?? {}) as Json;
      const numbers = numberOf(action);
      expect(numbers.settings).toMatchObject({ ...DEFAULT_GUARDRAILS, maxFailureRate });
      expect(numberOf("start").settings.maxFailureRate).toBe(maxFailureRate);
      expect(numbers.guardrails.map((a: { code: string }) => a.code)).toEqual(alarms);
      const flaky = numbers.operations.find((o: { arm: string }) => o.arm === "flaky");
      expect(flaky.failed / flaky.generations).toBeGreaterThan(0.1);
      expect(flaky.failed / flaky.generations).toBeLessThan(0.3);
    },
  );

  it("records the limits with an admin's decision too", async () => {
    const id = await experimentWithFailures({ ...DEFAULT_GUARDRAILS, maxBothBadRate: 0.4 });
    await stopExperiment(h.deps, id, "checked by hand");
    const stop = (await decisions(id)).find((d) => d.action === "stop")?.numbers as Json | undefined;
    expect(stop?.settings).toMatchObject({ maxBothBadRate: 0.4, maxFailureRate: 0.05 });
  });
});
