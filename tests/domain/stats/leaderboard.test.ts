import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  bootstrapLeaderboard,
  bradleyTerry,
  ELO_SCALE,
  type LeaderboardVote,
  onlineElo,
  pairCounts,
  quantile,
  rankByIntervals,
} from "../../../functions/src/domain/stats/index.js";

/**
 * Values from scripts/stats_reference.py: the same penalised likelihood minimised by scipy's
 * L-BFGS, statsmodels' unpenalised GLM (and its cluster-robust covariance), FastChat's online Elo.
 */
const fixture = JSON.parse(
  readFileSync(new URL("../../fixtures/stats/leaderboard.json", import.meta.url), "utf8"),
) as {
  cases: {
    name: string;
    models: string[];
    rows: LeaderboardVote[];
    ridge: number;
    ratings: Record<string, number>;
    gamma: number;
    glmRatings: Record<string, number>;
    glmGamma: number;
    clusterIntervalWidths: Record<string, number>;
    onlineElo: Record<string, number>;
  }[];
};

describe.each(fixture.cases.map((c) => [c.name, c] as const))("leaderboard: %s", (_name, c) => {
  it("fits Bradley–Terry with the position term like scipy's L-BFGS on the same likelihood", () => {
    const fit = bradleyTerry(pairCounts(c.rows), { models: c.models, ridge: c.ridge });
    for (const m of c.models)
      expect(Math.abs((fit.ratings[m] as number) - (c.ratings[m] as number)), m).toBeLessThan(1e-4);
    expect(Math.abs(fit.position.logOdds - c.gamma)).toBeLessThan(1e-6);
    expect(fit.position.eloPoints).toBeCloseTo(ELO_SCALE * c.gamma, 3);
  });

  it("is within a twentieth of a point of statsmodels' unpenalised GLM", () => {
    const fit = bradleyTerry(pairCounts(c.rows), { models: c.models, ridge: c.ridge });
    for (const m of c.models)
      expect(Math.abs((fit.ratings[m] as number) - (c.glmRatings[m] as number)), m).toBeLessThan(0.05);
    expect(Math.abs(fit.position.logOdds - c.glmGamma)).toBeLessThan(1e-3);
  });

  it("matches FastChat's online Elo", () => {
    const elo = onlineElo(c.rows);
    for (const m of c.models)
      expect(Math.abs((elo[m] as number) - (c.onlineElo[m] as number)), m).toBeLessThan(1e-9);
  });

  it("gives voter-bootstrap intervals as wide as statsmodels' cluster-robust 95 % intervals (±25 %)", () => {
    const board = bootstrapLeaderboard(c.rows, { rounds: 400, seed: 5, models: c.models });
    for (const row of board.rows) {
      const width = row.upper - row.lower;
      const expected = c.clusterIntervalWidths[row.model] as number;
      expect(width / expected, row.model).toBeGreaterThan(0.75);
      expect(width / expected, row.model).toBeLessThan(1.25);
      expect(row.lower).toBeLessThan(row.rating);
      expect(row.upper).toBeGreaterThan(row.rating);
    }
  });
});

describe("bootstrapLeaderboard", () => {
  const c = fixture.cases[0] as (typeof fixture.cases)[number];

  it("gives the same numbers for the same votes and seed, others for another seed", () => {
    const a = bootstrapLeaderboard(c.rows, { rounds: 200, seed: 9 });
    const b = bootstrapLeaderboard(c.rows, { rounds: 200, seed: 9 });
    const other = bootstrapLeaderboard(c.rows, { rounds: 200, seed: 10 });
    expect(a).toEqual(b);
    expect(other.rows.map((r) => r.lower)).not.toEqual(a.rows.map((r) => r.lower));
    expect(a.rounds).toBe(200);
  });

  it("counts votes, wins, ties and the both-bad rate per model", () => {
    const votes: LeaderboardVote[] = [
      { voterId: "u", left: "a", right: "b", outcome: 1 },
      { voterId: "u", left: "b", right: "a", outcome: 0.5, bothBad: true },
      { voterId: "w", left: "a", right: "a", outcome: 0 },
      { voterId: "w", left: "b", right: "a", outcome: 0.5 },
    ];
    const board = bootstrapLeaderboard(votes, { rounds: 20 });
    const a = board.rows.find((r) => r.model === "a");
    expect(a).toMatchObject({ votes: 4, wins: 1, losses: 0, ties: 2, bothBad: 1, bothBadRate: 0.25 });
    expect(board.voters).toBe(2);
    expect(board.votes).toBe(4);
  });
});

describe("rank rule and quantiles", () => {
  it.each([
    [
      [
        { lower: 10, upper: 20 },
        { lower: 15, upper: 25 },
        { lower: 30, upper: 40 },
      ],
      [2, 2, 1],
    ],
    [
      [
        { lower: 0, upper: 1 },
        { lower: 2, upper: 3 },
        { lower: 4, upper: 5 },
      ],
      [3, 2, 1],
    ],
    [
      [
        { lower: 0, upper: 10 },
        { lower: 1, upper: 9 },
      ],
      [1, 1],
    ],
  ])("ranks %j as %j", (rows, ranks) => {
    expect(rankByIntervals(rows)).toEqual(ranks);
  });

  it.each([
    [[1, 2, 3, 4], 0.5, 2.5],
    [[1, 2, 3, 4], 0.025, 1.075],
    [[1, 2, 3, 4], 0.975, 3.925],
    [[7], 0.3, 7],
  ])("quantile(%j, %d) = %d (pandas' linear rule)", (xs, q, v) => {
    expect(quantile(xs, q)).toBeCloseTo(v, 12);
  });
});
