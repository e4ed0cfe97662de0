import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  assessRater,
  bernoulliEProcess,
  orientVote,
  outlierEValues,
  type RaterVote,
} from "../../../functions/src/domain/stats/index.js";
import { expectClose } from "./close.js";

/** Values from numpy transcriptions of the likelihood ratios and FastChat's outlier_detect. */
const fixture = JSON.parse(
  readFileSync(new URL("../../fixtures/stats/rater.json", import.meta.url), "utf8"),
) as {
  bernoulli: { p0: number; qs: number[]; xs: boolean[]; final: number; max: number }[];
  outlier: { votes: [number, number, number][]; upper: number; lower: number }[];
};

describe("rater-quality e-processes against the reference", () => {
  it.each(fixture.bernoulli.map((c, i) => [i, c] as const))("Bernoulli e-process %d", (_i, c) => {
    const r = bernoulliEProcess(c.xs, c.p0, c.qs);
    expectClose(r.final, c.final, "final", 1e-9);
    expectClose(r.max, c.max, "max", 1e-9);
  });

  it.each(fixture.outlier.map((c, i) => [i, c] as const))("FastChat outlier e-values %d", (_i, c) => {
    const r = outlierEValues(
      c.votes.map(([vote, populationWins, populationLosses]) => ({ vote, populationWins, populationLosses })),
    );
    expectClose(r.upper, c.upper, "upper", 1e-9);
    expectClose(r.lower, c.lower, "lower", 1e-9);
  });
});

describe("assessRater", () => {
  const opts = { alpha: 0.05, minDecisionMs: 400 };
  const plain = (choice: RaterVote["choice"], decisionMs: number | null = 2000): RaterVote => ({
    choice,
    decisionMs,
  });

  it.each([
    [20, []],
    [21, ["one_side"]],
  ] as const)("always-left over %d votes: flags %j", (n, codes) => {
    const r = assessRater(
      Array.from({ length: n }, () => plain("left")),
      opts,
    );
    expect(r.flags.map((f) => f.code)).toEqual(codes);
  });

  it("does not flag a voter who alternates sides", () => {
    const r = assessRater(
      Array.from({ length: 200 }, (_, i) => plain(i % 3 ? "left" : "right")),
      opts,
    );
    expect(r.flags).toEqual([]);
  });

  it("counts a tie or both-bad on a gold pair as wrong", () => {
    const gold = (choice: RaterVote["choice"]): RaterVote => ({
      choice,
      decisionMs: 2000,
      goldCleanSide: "right",
    });
    const r = assessRater([gold("right"), gold("left"), gold("tie"), gold("both_bad"), gold("right")], opts);
    expect([r.goldVotes, r.goldCorrect]).toEqual([5, 2]);
  });

  it("flags a voter who is too fast too often, not one who never sends a time", () => {
    expect(
      assessRater(
        Array.from({ length: 15 }, (_, i) => plain(i % 2 ? "left" : "right", 150)),
        opts,
      ).flags.map((f) => f.code),
    ).toEqual(["too_fast"]);
    expect(
      assessRater(
        Array.from({ length: 50 }, (_, i) => plain(i % 2 ? "left" : "right", null)),
        opts,
      ).flags,
    ).toEqual([]);
  });

  it("leaves voters with fewer than five votes out of the outlier test", () => {
    const against = (): RaterVote => ({
      choice: "right",
      decisionMs: 2000,
      outlier: { vote: 0, populationWins: 1000, populationLosses: 0 },
    });
    expect(assessRater([against(), against(), against(), against()], opts).flags).toEqual([]);
    expect(
      assessRater([against(), against(), against(), against(), against()], opts).flags.map((f) => f.code),
    ).toEqual(["outlier"]);
  });

  it.each([
    ["m1", "m2", "left", 1],
    ["m2", "m1", "right", 1],
    ["m2", "m1", "left", 0],
    ["m1", "m1", "left", 1],
    ["m1", "m1", "right", 0],
    ["m2", "m1", "tie", 0.5],
  ] as const)("orients %s vs %s, %s → %d", (l, r, choice, vote) => {
    const o = orientVote(l, r, choice);
    expect(o.vote).toBe(vote);
    expect(o.unit).toBe(orientVote(r, l, "tie").unit);
  });
});
