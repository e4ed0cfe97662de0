import { describe, expect, it } from "vitest";
import {
  chooseLeft,
  MAX_SEED,
  outcomeOf,
  pickArms,
  planPair,
  poolShortfall,
  voteFlags,
} from "../../functions/src/domain/pairing.js";

/** A deterministic sequence of "random" numbers. */
const seq = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length] as number;
};

describe("pairing", () => {
  it.each([
    [0, "a"],
    [0.49, "a"],
    [0.5, "b"],
    [0.99, "b"],
  ] as const)("coin %d puts %s on the left", (r, side) => {
    expect(chooseLeft(() => r)).toBe(side);
  });

  it("puts each side on the left about half the time", () => {
    let s = 1;
    const lcg = () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    };
    const n = 10_000;
    let a = 0;
    for (let i = 0; i < n; i++) if (chooseLeft(lcg) === "a") a++;
    expect(Math.abs(a / n - 0.5)).toBeLessThan(0.02);
  });

  it.each([
    ["left", "a", "a"],
    ["left", "b", "b"],
    ["right", "a", "b"],
    ["right", "b", "a"],
    ["tie", "a", "tie"],
    ["both_bad", "b", "both_bad"],
  ] as const)("%s with %s on the left means %s", (choice, leftIs, outcome) => {
    expect(outcomeOf(choice, leftIs)).toBe(outcome);
  });

  const arms3 = [
    { name: "champion", adapterId: null },
    { name: "x", adapterId: "ad_x" },
    { name: "y", adapterId: "ad_y" },
  ];
  it.each([
    [[0.5, 0.5], 0.1, [0, 1]],
    [[0.5, 0.5], 0.99, [0, 1]],
    [[0.4, 0.3, 0.3], 0.49, [0, 1]],
    [[0.4, 0.3, 0.3], 0.5, [0, 2]],
    [[0.4, 0, 0.6], 0.01, [0, 2]],
    [[1, 0, 0], 0.7, [0, 2]], // no weight on challengers: uniform over them
  ])("allocation %j with r=%d picks arms %j", (allocation, r, expected) => {
    const arms = allocation.length === 2 ? arms3.slice(0, 2) : arms3;
    expect(pickArms(arms, allocation, () => r)).toEqual(expected);
  });

  it("plans an experiment pair with one prompt and one seed for both arms (paired design)", () => {
    const plan = planPair(
      "p1",
      { kind: "experiment", arms: arms3.slice(0, 2), allocation: [0.5, 0.5] },
      seq(0.3, 0.25),
    );
    const seed = Math.floor(0.25 * (MAX_SEED + 1));
    expect(plan).toEqual({
      promptId: "p1",
      kind: "experiment",
      a: { adapterId: null, seed, arm: arms3[0]?.name, degradation: null },
      b: { adapterId: "ad_x", seed, arm: arms3[1]?.name, degradation: null },
      goldAnswer: null,
    });
  });

  it.each([
    [0.2, "a"],
    [0.7, "b"],
  ] as const)(
    "plans a gold pair: one seed, the degraded copy opposite the answer (r=%d → clean %s)",
    (r, answer) => {
      const plan = planPair("p1", { kind: "gold", adapterId: "champ", degradation: "blur" }, seq(0.5, r));
      expect(plan.kind).toBe("gold");
      expect(plan.goldAnswer).toBe(answer);
      const clean = plan[answer];
      const degraded = plan[answer === "a" ? "b" : "a"];
      expect(clean).toEqual({
        adapterId: "champ",
        seed: Math.floor(0.5 * (MAX_SEED + 1)),
        arm: null,
        degradation: null,
      });
      expect(degraded).toEqual({ ...clean, degradation: "blur" });
    },
  );

  it("plans a model pair with two different seeds of the same model", () => {
    const plan = planPair("p1", { kind: "model", adapterId: "champ" }, seq(0.5, 0.5));
    expect(plan.a.adapterId).toBe("champ");
    expect(plan.b.adapterId).toBe("champ");
    expect(plan.a.seed).not.toBe(plan.b.seed);
  });

  it.each([
    [0, 0, 20, 8, 8],
    [15, 0, 20, 8, 5],
    [15, 5, 20, 8, 0],
    [30, 0, 20, 8, 0],
    [0, 3, 4, 8, 1],
  ])("ready %d, generating %d, depth %d, batch %d → %d more", (ready, gen, depth, batch, more) => {
    expect(poolShortfall(ready, gen, depth, batch)).toBe(more);
  });

  it.each([
    [null, ["no_decision_time"]],
    [0, ["too_fast"]],
    [399, ["too_fast"]],
    [400, []],
    [12_000, []],
  ])("decision time %s ms → flags %j", (ms, flags) => {
    expect(voteFlags(ms)).toEqual(flags);
  });
});
