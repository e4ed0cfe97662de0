import { describe, expect, it } from "vitest";
import {
  type ArmEvidence,
  type ArmOperations,
  allocationAfter,
  DEFAULT_GUARDRAILS,
  decideExperiment,
  guardrailAlarms,
  judgeArm,
  readExperimentVote,
} from "../../functions/src/domain/experimentDecision.js";

const settings = { margin: 0, minVotes: 100, maxVotes: 1000 };
const arm = (name: string, n: number, estimate: number, lower: number, upper: number): ArmEvidence => ({
  arm: name,
  n,
  estimate,
  lower,
  upper,
});

describe("judgeArm", () => {
  it.each([
    // n, estimate, lower, upper, margin, state
    [50, 0.9, 0.7, 0.99, 0, "collecting"], // too few votes, however clear
    [99, 0.2, 0.05, 0.3, 0, "collecting"],
    [100, 0.62, 0.51, 0.72, 0, "promote"],
    [100, 0.62, 0.5, 0.72, 0, "collecting"], // the bar is strict: lower must exceed 0.5
    [100, 0.62, 0.51, 0.72, 0.02, "collecting"], // margin raises the bar to 0.52
    [100, 0.62, 0.53, 0.72, 0.02, "promote"],
    [400, 0.4, 0.31, 0.49, 0, "retire"], // upper below the bar
    [400, 0.45, 0.38, 0.5, 0, "collecting"],
    [400, 0.48, 0.4, 0.515, 0.02, "retire"], // upper 0.515 < 0.52
    [1000, 0.51, 0.47, 0.55, 0, "retire"], // undecided at the cap
    [999, 0.51, 0.47, 0.55, 0, "collecting"],
    [1000, 0.6, 0.55, 0.65, 0, "promote"], // decided at the cap: promotion wins over the cap
  ] as const)("n=%d est=%d [%d, %d] margin %d → %s", (n, est, lo, up, margin, state) => {
    expect(judgeArm(arm("b", n, est, lo, up), { ...settings, margin }).state).toBe(state);
  });

  it("keeps an arm settled by an earlier decision", () => {
    const v = judgeArm(
      { ...arm("b", 500, 0.9, 0.8, 0.95), settled: { state: "retire", reason: "retired earlier" } },
      settings,
    );
    expect(v).toEqual({ arm: "b", state: "retire", reason: "retired earlier" });
  });

  it("states the numbers it used in its reason", () => {
    expect(judgeArm(arm("b", 120, 0.62, 0.513, 0.72), settings).reason).toBe(
      "lower bound 51.3 % of P(b ≻ control) is above 50.0 % after 120 votes",
    );
  });
});

describe("decideExperiment", () => {
  const base = { control: "champion", settings, srm: [], guardrails: [] };

  it.each([
    // arms (name, n, estimate, lower, upper), expected action, expected arm
    [[["b", 200, 0.6, 0.52, 0.68]], "promote", "b"],
    [[["b", 200, 0.5, 0.42, 0.58]], "continue", null],
    [[["b", 200, 0.4, 0.32, 0.48]], "retire", null],
    [[["b", 1000, 0.51, 0.48, 0.54]], "retire", null],
    // several arms: the best promotable arm wins (highest estimate), others do not block it
    [
      [
        ["b", 300, 0.6, 0.52, 0.68],
        ["c", 300, 0.66, 0.55, 0.75],
        ["d", 300, 0.5, 0.42, 0.58],
      ],
      "promote",
      "c",
    ],
    // equal estimates: the higher lower bound wins
    [
      [
        ["b", 300, 0.6, 0.51, 0.68],
        ["c", 300, 0.6, 0.53, 0.67],
      ],
      "promote",
      "c",
    ],
    // one arm retired, another still collecting: continue
    [
      [
        ["b", 300, 0.4, 0.3, 0.48],
        ["c", 300, 0.55, 0.46, 0.63],
      ],
      "continue",
      null,
    ],
    // all retired: retire
    [
      [
        ["b", 300, 0.4, 0.3, 0.48],
        ["c", 1000, 0.52, 0.49, 0.55],
      ],
      "retire",
      null,
    ],
  ] as const)("%j → %s %s", (arms, action, winner) => {
    const v = decideExperiment({
      ...base,
      arms: arms.map(([name, n, est, lo, up]) => arm(name, n, est, lo, up)),
    });
    expect(v.action).toBe(action);
    expect(v.arm).toBe(winner);
    expect(v.bar).toBe(0.5);
  });

  it("retires the undecided arms of a multi-arm experiment when another is promoted", () => {
    const v = decideExperiment({
      ...base,
      arms: [arm("b", 300, 0.62, 0.53, 0.7), arm("c", 300, 0.52, 0.44, 0.6), arm("d", 300, 0.4, 0.3, 0.48)],
    });
    expect(v.arms.map((a) => [a.arm, a.state])).toEqual([
      ["b", "promote"],
      ["c", "retire"],
      ["d", "retire"],
    ]);
    expect(v.arms[1]?.reason).toMatch(/^b was promoted while this arm was undecided/);
  });

  it("stops the whole experiment as untrustworthy on a sample ratio mismatch, even over a clear winner", () => {
    const v = decideExperiment({
      ...base,
      arms: [arm("b", 300, 0.7, 0.6, 0.8)],
      srm: [
        { check: "left/right placement", pValue: 0.2, alarm: false },
        { check: "arm allocation", pValue: 0.0004, alarm: true },
      ],
    });
    expect(v.action).toBe("stop_untrustworthy");
    expect(v.arm).toBeNull();
    expect(v.reason).toBe("sample ratio mismatch in arm allocation (p = 0.000400)");
    expect(v.arms[0]?.state).toBe("stopped");
  });

  it("a guardrail on a challenger stops that arm instead of promoting it; the others go on", () => {
    const alarm = {
      arm: "b",
      code: "generation_failures" as const,
      reason: "6 of 40 generations failed",
      value: 0.15,
      limit: 0.05,
    };
    const two = decideExperiment({ ...base, arms: [arm("b", 300, 0.7, 0.6, 0.8)], guardrails: [alarm] });
    expect(two.action).toBe("stop_untrustworthy");
    expect(two.reason).toBe("b: 6 of 40 generations failed");
    const three = decideExperiment({
      ...base,
      arms: [arm("b", 300, 0.7, 0.6, 0.8), arm("c", 300, 0.55, 0.45, 0.65)],
      guardrails: [alarm],
    });
    expect(three.action).toBe("continue");
    expect(three.arms.map((a) => a.state)).toEqual(["stopped", "collecting"]);
  });

  it("a guardrail on the control stops the whole experiment", () => {
    const v = decideExperiment({
      ...base,
      arms: [arm("b", 300, 0.7, 0.6, 0.8)],
      guardrails: [{ arm: "champion", code: "generation_failures", reason: "x", value: 0.2, limit: 0.05 }],
    });
    expect(v.action).toBe("stop_untrustworthy");
    expect(v.reason).toBe("control arm: x");
  });
});

describe("guardrailAlarms", () => {
  const ops = (o: Partial<ArmOperations> & { arm: string }): ArmOperations => ({
    generations: 100,
    failed: 0,
    latencyMedianMs: 200,
    votes: 100,
    bothBad: 10,
    ...o,
  });

  it.each([
    // challenger operations, expected alarm codes
    [{}, []],
    [{ failed: 5 }, []], // 5 % is the limit, not above it
    [{ failed: 6 }, ["generation_failures"]],
    [{ generations: 19, failed: 10 }, []], // too few generations to judge
    [{ bothBad: 50 }, []],
    [{ bothBad: 51 }, ["both_bad_rate"]],
    [{ votes: 29, bothBad: 29 }, []],
    [{ latencyMedianMs: 400 }, []],
    [{ latencyMedianMs: 401 }, ["latency"]],
    [{ latencyMedianMs: 900, generations: 10 }, []],
    [{ failed: 30, bothBad: 80, latencyMedianMs: 1000 }, ["generation_failures", "both_bad_rate", "latency"]],
  ] as const)("%j → %j", (challenger, codes) => {
    const alarms = guardrailAlarms(
      "control",
      [ops({ arm: "control" }), ops({ arm: "b", ...challenger })],
      DEFAULT_GUARDRAILS,
    );
    expect(alarms.map((a) => a.code)).toEqual(codes);
    for (const a of alarms) expect(a.arm).toBe("b");
  });

  it("judges the control's failures but not its both-bad rate or latency", () => {
    const alarms = guardrailAlarms(
      "control",
      [ops({ arm: "control", failed: 20, bothBad: 90 }), ops({ arm: "b" })],
      DEFAULT_GUARDRAILS,
    );
    expect(alarms.map((a) => [a.arm, a.code])).toEqual([["control", "generation_failures"]]);
  });
});

describe("readExperimentVote", () => {
  it.each([
    // armA, armB, leftIs, choice → challenger, onLeft, result
    ["control", "b", "a", "left", "b", false, "loss"],
    ["control", "b", "a", "right", "b", false, "win"],
    ["control", "b", "b", "left", "b", true, "win"],
    ["control", "b", "b", "right", "b", true, "loss"],
    ["b", "control", "a", "left", "b", true, "win"],
    ["b", "control", "b", "left", "b", false, "loss"],
    ["c", "control", "a", "tie", "c", true, "tie"],
    ["control", "c", "a", "both_bad", "c", false, "both_bad"],
  ] as const)("%s|%s left=%s %s → %s", (armA, armB, leftIs, choice, challenger, onLeft, result) => {
    expect(readExperimentVote("control", { armA, armB, leftIs, choice })).toEqual({
      challenger,
      challengerOnLeft: onLeft,
      result,
    });
  });

  it.each([
    [null, "b", "a", "left"],
    ["control", "b", null, "left"],
    ["control", "control", "a", "left"],
    ["b", "c", "a", "left"],
    ["control", "b", "a", "sideways"],
  ] as const)(
    "ignores a pair that is not control vs one challenger: %s|%s %s %s",
    (armA, armB, leftIs, choice) => {
      expect(readExperimentVote("control", { armA, armB, leftIs, choice })).toBeNull();
    },
  );
});

describe("allocationAfter", () => {
  it("takes traffic from arms that are no longer collecting", () => {
    const arms = [{ name: "control" }, { name: "b" }, { name: "c" }];
    expect(
      allocationAfter(
        arms,
        [0.5, 0.25, 0.25],
        [
          { arm: "b", state: "retire", reason: "" },
          { arm: "c", state: "collecting", reason: "" },
        ],
      ),
    ).toEqual([0.5, 0, 0.25]);
  });
});
