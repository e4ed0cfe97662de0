import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  confidenceSequencePath,
  type ExperimentOutcome,
  experimentStatistics,
  outcomeValue,
} from "../../../functions/src/domain/stats/index.js";

/** Values from scripts/stats_reference.py (statsmodels' cluster-robust variance, scipy's normal CDF). */
const fixture = JSON.parse(
  readFileSync(new URL("../../fixtures/stats/experiments.json", import.meta.url), "utf8"),
) as {
  tuningVotes: number;
  priorVoters: number;
  priorVoterVariance: number;
  cases: {
    name: string;
    arms: string[];
    alpha: number;
    rows: ExperimentOutcome[];
    expected: Record<string, Record<string, unknown>>;
  }[];
  path: {
    alpha: number;
    every: number;
    rows: ExperimentOutcome[];
    points: { n: number; estimate: number; lower: number; upper: number; pValue: number }[];
  };
};

/** Relative-or-absolute closeness: numbers agree to 1e-9 of their size (or 1e-12 near zero). */
function close(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === "number") {
    expect(typeof actual, path).toBe("number");
    const tol = Math.max(1e-12, 1e-9 * Math.abs(expected));
    expect(Math.abs((actual as number) - expected), `${path}: ${actual} vs ${expected}`).toBeLessThanOrEqual(
      tol,
    );
  } else if (expected && typeof expected === "object") {
    for (const [k, v] of Object.entries(expected))
      close((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
  } else expect(actual, path).toEqual(expected);
}

describe("experimentStatistics against the Python reference", () => {
  it.each(fixture.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const out = experimentStatistics({
      control: "champion",
      arms: c.arms,
      outcomes: c.rows,
      alpha: c.alpha,
      margin: 0,
    });
    expect(out.alphaPerArm).toBeCloseTo(c.alpha / c.arms.length, 15);
    expect(out.method.tuningVotes).toBe(fixture.tuningVotes);
    expect(out.method.priorVoters).toBe(fixture.priorVoters);
    expect(out.method.priorVoterVariance).toBe(fixture.priorVoterVariance);
    for (const arm of c.arms) {
      const got = out.arms.find((a) => a.arm === arm);
      close(got, c.expected[arm], arm);
    }
  });

  it("gives the interval after every k votes with the running p-value", () => {
    const { rows, alpha, every, points } = fixture.path;
    const got = confidenceSequencePath(
      rows.map((r) => ({ voterId: r.voterId, y: outcomeValue(r.result) })),
      alpha,
      { every },
    );
    expect(got.map((p) => p.n)).toEqual(points.map((p) => p.n));
    for (const [i, g] of got.entries()) close(g, points[i], `point ${i}`);
  });
});

describe("experimentStatistics", () => {
  const vote = (
    arm: string,
    voterId: string,
    result: ExperimentOutcome["result"],
    challengerOnLeft = true,
  ) => ({
    arm,
    voterId,
    result,
    challengerOnLeft,
  });

  it("counts ties and both-bad as half a win and reports each arm's counts", () => {
    const out = experimentStatistics({
      control: "a",
      arms: ["b"],
      alpha: 0.05,
      margin: 0.01,
      outcomes: [
        vote("b", "x", "win"),
        vote("b", "y", "tie"),
        vote("b", "z", "both_bad"),
        vote("b", "z", "loss"),
      ],
    });
    const b = out.arms[0];
    expect(b).toMatchObject({ n: 4, wins: 1, losses: 1, ties: 1, bothBad: 1, voters: 3, estimate: 0.5 });
    expect(out.margin).toBe(0.01);
    expect(out.method.formula).toContain("ρ");
  });

  it("gives the whole range with fewer than two voters, however many votes", () => {
    const outcomes = Array.from({ length: 500 }, () => vote("b", "only", "win"));
    const b = experimentStatistics({ control: "a", arms: ["b"], alpha: 0.05, margin: 0, outcomes }).arms[0];
    expect([b?.lower, b?.upper, b?.eValue, b?.pValue]).toEqual([0, 1, 1, 1]);
  });

  it("splits alpha across challengers, which widens each interval", () => {
    const outcomes = Array.from({ length: 400 }, (_, i) =>
      vote(i % 2 ? "b" : "c", `v${i % 40}`, i % 3 ? "win" : "loss", i % 4 < 2),
    );
    const one = experimentStatistics({ control: "a", arms: ["b"], alpha: 0.05, margin: 0, outcomes }).arms[0];
    const two = experimentStatistics({ control: "a", arms: ["b", "c"], alpha: 0.05, margin: 0, outcomes });
    expect(two.alphaPerArm).toBe(0.025);
    const b2 = two.arms.find((a) => a.arm === "b");
    expect(b2?.estimate).toBe(one?.estimate);
    expect((b2?.upper ?? 0) - (b2?.lower ?? 0)).toBeGreaterThan((one?.upper ?? 0) - (one?.lower ?? 0));
  });

  it("measures the left image's advantage apart from the challenger's", () => {
    // The challenger wins exactly when it is on the left: p = ½, the left image always wins.
    const outcomes = Array.from({ length: 300 }, (_, i) =>
      vote("b", `v${i % 30}`, i % 2 ? "win" : "loss", i % 2 === 1),
    );
    const b = experimentStatistics({ control: "a", arms: ["b"], alpha: 0.05, margin: 0, outcomes }).arms[0];
    expect(b?.estimate).toBe(0.5);
    expect(b?.positionEffect.leftWinRate).toBe(1);
    expect(b?.positionEffect.lower).toBeGreaterThan(0.3);
    expect(b?.chanceToWin).toBeCloseTo(0.5, 10);
  });

  it("rejects an alpha outside (0, 1) and an empty arm list", () => {
    expect(() =>
      experimentStatistics({ control: "a", arms: ["b"], alpha: 0, margin: 0, outcomes: [] }),
    ).toThrow(RangeError);
    expect(() =>
      experimentStatistics({ control: "a", arms: [], alpha: 0.05, margin: 0, outcomes: [] }),
    ).toThrow(RangeError);
  });
});
