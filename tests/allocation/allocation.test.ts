import { describe, expect, it } from "vitest";
import {
  closedArms,
  drawTraffic,
  fallbackOrder,
  poolDepths,
  type TrafficClass,
  trafficKey,
  trafficPlan,
} from "../../functions/src/domain/allocation.js";
import { seededRandom } from "../helpers/random.js";

const weights = (plan: ReturnType<typeof trafficPlan>) =>
  Object.fromEntries(plan.map((c) => [trafficKey(c.traffic), Number(c.weight.toFixed(6))]));

describe("traffic plan", () => {
  it.each([
    // experiments, gold rate, experiment share → weights
    [[], 0.05, 0.5, { data: 0.95, gold: 0.05 }],
    [["e1"], 0.05, 0.5, { data: 0.475, "experiment:e1": 0.475, gold: 0.05 }],
    [["e1", "e2"], 0.1, 0.5, { data: 0.45, "experiment:e1": 0.225, "experiment:e2": 0.225, gold: 0.1 }],
    [["e1"], 0, 0.2, { data: 0.8, "experiment:e1": 0.2 }],
    [["e1"], 0, 1, { "experiment:e1": 1 }],
    [["e1"], 0.5, 0, { data: 0.5, gold: 0.5 }],
    [[], 0, 0.5, { data: 1 }],
    [["e1"], Number.NaN, 2, { "experiment:e1": 1 }], // out-of-range inputs clamped to [0, 1]
  ] as const)("experiments %j, gold %d, share %d → %j", (ids, gold, share, expected) => {
    const plan = trafficPlan(ids, { goldRate: gold, experimentShare: share });
    expect(weights(plan)).toEqual(expected);
    expect(plan.reduce((s, c) => s + c.weight, 0)).toBeCloseTo(1, 12);
  });
});

describe("drawing a class", () => {
  const plan = trafficPlan(["e1"], { goldRate: 0.1, experimentShare: 0.5 }); // data .45, e1 .45, gold .1
  it.each([
    [0, "data"],
    [0.4499, "data"],
    [0.45, "experiment:e1"],
    [0.8999, "experiment:e1"],
    [0.9, "gold"],
    [0.999999, "gold"],
  ])("r = %d → %s", (r, expected) => {
    expect(trafficKey(drawTraffic(plan, () => r))).toBe(expected);
  });

  it("draws each class at its weight (20,000 draws, within 4.5 binomial standard deviations)", () => {
    const random = seededRandom(11);
    const n = 20_000;
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const k = trafficKey(drawTraffic(plan, random));
      counts[k] = (counts[k] ?? 0) + 1;
    }
    for (const c of plan) {
      const p = c.weight;
      const observed = counts[trafficKey(c.traffic)] ?? 0;
      expect(Math.abs(observed - n * p)).toBeLessThanOrEqual(4.5 * Math.sqrt(n * p * (1 - p)));
    }
  });

  it("an empty plan serves data", () => {
    expect(drawTraffic([], () => 0.3)).toEqual({ kind: "data" });
  });
});

describe("fallback order", () => {
  const plan = trafficPlan(["e1", "e2"], { goldRate: 0.05, experimentShare: 0.8 });
  const keys = (ts: TrafficClass[]) => ts.map(trafficKey);
  it.each([
    // gold pairs are served only when drawn: never a fallback
    [{ kind: "gold" }, ["gold", "data", "experiment:e1", "experiment:e2"]],
    [{ kind: "experiment", experimentId: "e2" }, ["experiment:e2", "data", "experiment:e1"]],
    [{ kind: "data" }, ["data", "experiment:e1", "experiment:e2"]],
  ] as const)("drawn %j → tries %j", (drawn, expected) => {
    expect(keys(fallbackOrder(plan, drawn))).toEqual(expected);
  });
});

describe("pool depths", () => {
  it.each([
    // experiments, gold rate, share, depth → depths in plan order (data, experiments…, gold)
    [[], 0.05, 0.5, 20, [20, 2]],
    [["e1"], 0.05, 0.5, 20, [20, 20, 3]],
    [["e1", "e2"], 0.1, 0.5, 20, [20, 10, 10, 5]],
    [["e1"], 0, 0.8, 10, [3, 10]],
    [["e1"], 0.5, 0, 4, [4, 4]],
    [[], 0.05, 0.5, 1, [1, 1]], // the floor never exceeds the depth
  ] as const)("experiments %j, gold %d, share %d, depth %d → %j", (ids, gold, share, depth, expected) => {
    expect(poolDepths(trafficPlan(ids, { goldRate: gold, experimentShare: share }), depth)).toEqual(expected);
  });
});

describe("closed arms", () => {
  const arms = [{ name: "control" }, { name: "dpo" }, { name: "cpo" }, { name: "rpo" }];
  it.each([
    [[0.5, 0.25, 0.25, 0], ["rpo"]],
    [
      [0.5, 0.5, 0, 0],
      ["cpo", "rpo"],
    ],
    [[0, 0.3, 0.3, 0.4], []], // the control's own weight does not matter
    [
      [0.5, 0.5],
      ["cpo", "rpo"],
    ], // missing weights: closed
    [[0.5, -1, 0.2, 0.3], ["dpo"]],
  ])("allocation %j → closed %j", (allocation, expected) => {
    expect(closedArms(arms, allocation)).toEqual(expected);
  });
});
