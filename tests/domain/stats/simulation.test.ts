/**
 * A small version of bench/stats.ts: the same simulated voters, fewer runs and votes. The full
 * numbers (2,000 A/A runs to 10,000 votes) are in bench/results/stats.json.
 */
import { describe, expect, it } from "vitest";
import {
  DEFAULT_POPULATION,
  firstDecisions,
  simulateRater,
  simulateVotes,
} from "../../../bench/statsSimulation.js";
import {
  DEFAULT_TUNING_VOTES,
  PRIOR_VOTERS,
} from "../../../functions/src/domain/stats/confidenceSequence.js";
import { seededRandom } from "../../../functions/src/domain/stats/random.js";
import { assessRater } from "../../../functions/src/domain/stats/raterQuality.js";
import { srmLogBayesFactor } from "../../../functions/src/domain/stats/sampleRatioMismatch.js";

const settings = {
  alpha: 0.05,
  tuningVotes: DEFAULT_TUNING_VOTES,
  priorVoters: PRIOR_VOTERS,
  growthBookS: 5000,
  growthBookMinVotes: 100,
};
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

describe("simulated experiments (small)", () => {
  it("A/A with clustered voters: our interval rarely leaves ½ out; GrowthBook's plain-σ interval more often when voters differ a lot", () => {
    const random = seededRandom(42);
    let ours = 0;
    let growthBook = 0;
    const runs = 200;
    for (let r = 0; r < runs; r++) {
      const d = firstDecisions(
        simulateVotes(random, { ...DEFAULT_POPULATION, voterSpread: 0.25 }, 2000),
        settings,
        10_000,
      );
      if (d.ours) ours++;
      if (d.growthBook) growthBook++;
    }
    // Binomial(200, 0.05) exceeds 18 with probability < 2 %.
    expect(ours).toBeLessThanOrEqual(18);
    expect(growthBook).toBeGreaterThan(ours);
  });

  it("at p = 0.7 our interval decides in fewer votes than GrowthBook's (median over 60 runs)", () => {
    const random = seededRandom(7);
    const ours: number[] = [];
    const gb: number[] = [];
    for (let r = 0; r < 60; r++) {
      const d = firstDecisions(
        simulateVotes(random, { ...DEFAULT_POPULATION, p: 0.7 }, 3000),
        settings,
        10_000,
      );
      ours.push(d.ours?.above ? d.ours.n : 3000);
      gb.push(d.growthBook?.above ? d.growthBook.n : 3000);
    }
    expect(median(ours)).toBeLessThan(0.8 * median(gb));
  });

  it("SRM fires on a 52/48 placement within 20,000 votes", () => {
    const random = seededRandom(3);
    let a = 0;
    let firedAt = 0;
    for (let n = 1; n <= 20_000 && !firedAt; n++) {
      if (random() < 0.52) a++;
      if (srmLogBayesFactor([a, n - a], [0.5, 0.5]) > Math.log(20)) firedAt = n;
    }
    expect(firedAt).toBeGreaterThan(0);
  });

  it("raters: always-left flagged within 30 votes, a random clicker by gold pairs, honest voters left alone", () => {
    const random = seededRandom(11);
    const assess = (votes: Parameters<typeof assessRater>[0]) =>
      assessRater(votes, { alpha: 0.05, minDecisionMs: 400 });
    const opts = { goldShare: 0.25, agreement: 0.8, populationAgreement: 0.8, checkEvery: 1, assess };
    const lefty = simulateRater(random, "always_left", { ...opts, votes: 30 });
    expect(lefty.flagged).toBe(true);
    expect(lefty.votesToFlag).toBeLessThanOrEqual(30);
    const clicker = simulateRater(random, "random_clicker", {
      ...opts,
      votes: 400,
      populationAgreement: 0.5,
    });
    expect(clicker.codes).toContain("gold_accuracy");
    let honestFlagged = 0;
    for (let r = 0; r < 40; r++)
      if (simulateRater(random, "honest", { ...opts, votes: 200 }).flagged) honestFlagged++;
    expect(honestFlagged).toBeLessThanOrEqual(1);
  });
});
