/**
 * The guardrail limits come from the configuration (EXPERIMENT_GUARDRAIL_*): the same arm
 * readings lead to another decision when a limit changes, through the settings an experiment
 * starts with. Bad values stop start-up with one line naming the variable.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../functions/src/config.js";
import {
  type ArmOperations,
  DEFAULT_GUARDRAILS,
  decideExperiment,
  guardrailAlarms,
} from "../../functions/src/domain/experimentDecision.js";
import { settingsAtStart } from "../../functions/src/experiments/settings.js";

const ops = (o: Partial<ArmOperations> & { arm: string }): ArmOperations => ({
  generations: 100,
  failed: 0,
  latencyMedianMs: 200,
  votes: 100,
  bothBad: 0,
  ...o,
});

/** The decision on one challenger whose interval clears the bar, with these readings. */
function decide(
  env: Record<string, string>,
  challenger: Partial<ArmOperations>,
  control: Partial<ArmOperations> = {},
) {
  const settings = settingsAtStart(loadConfig(env));
  const alarms = guardrailAlarms(
    "control",
    [ops({ arm: "control", ...control }), ops({ arm: "b", ...challenger })],
    settings,
  );
  const verdict = decideExperiment({
    control: "control",
    arms: [{ arm: "b", n: 200, estimate: 0.65, lower: 0.56, upper: 0.74 }],
    settings,
    srm: [],
    guardrails: alarms,
  });
  return { action: verdict.action, alarms: alarms.map((a) => `${a.arm}:${a.code}`), settings };
}

const limitOf = {
  EXPERIMENT_GUARDRAIL_FAILURE_RATE: "maxFailureRate",
  EXPERIMENT_GUARDRAIL_BOTH_BAD_RATE: "maxBothBadRate",
  EXPERIMENT_GUARDRAIL_LATENCY_RATIO: "maxLatencyRatio",
  EXPERIMENT_GUARDRAIL_MIN_GENERATIONS: "minGenerations",
  EXPERIMENT_GUARDRAIL_MIN_VOTES: "minVotesForBothBad",
} as const;

describe("guardrail limits from the configuration", () => {
  it("default to the rule's limits", () => {
    expect(loadConfig({}).experiments.guardrails).toEqual(DEFAULT_GUARDRAILS);
    expect(DEFAULT_GUARDRAILS).toEqual({
      maxFailureRate: 0.05,
      maxBothBadRate: 0.5,
      maxLatencyRatio: 2,
      minGenerations: 20,
      minVotesForBothBad: 30,
    });
  });

  it.each([
    // variable, value, challenger readings, control readings, decision at the default, decision with the value
    ["EXPERIMENT_GUARDRAIL_FAILURE_RATE", "0.1", { failed: 8 }, {}, "stop_untrustworthy", "promote"],
    ["EXPERIMENT_GUARDRAIL_FAILURE_RATE", "0.02", { failed: 3 }, {}, "promote", "stop_untrustworthy"],
    ["EXPERIMENT_GUARDRAIL_FAILURE_RATE", "0.1", {}, { failed: 8 }, "stop_untrustworthy", "promote"],
    ["EXPERIMENT_GUARDRAIL_BOTH_BAD_RATE", "0.3", { bothBad: 40 }, {}, "promote", "stop_untrustworthy"],
    ["EXPERIMENT_GUARDRAIL_BOTH_BAD_RATE", "0.7", { bothBad: 60 }, {}, "stop_untrustworthy", "promote"],
    [
      "EXPERIMENT_GUARDRAIL_LATENCY_RATIO",
      "1.2",
      { latencyMedianMs: 300 },
      {},
      "promote",
      "stop_untrustworthy",
    ],
    [
      "EXPERIMENT_GUARDRAIL_LATENCY_RATIO",
      "3",
      { latencyMedianMs: 500 },
      {},
      "stop_untrustworthy",
      "promote",
    ],
    [
      "EXPERIMENT_GUARDRAIL_MIN_GENERATIONS",
      "10",
      { generations: 15, failed: 5 },
      {},
      "promote",
      "stop_untrustworthy",
    ],
    ["EXPERIMENT_GUARDRAIL_MIN_GENERATIONS", "200", { failed: 30 }, {}, "stop_untrustworthy", "promote"],
    ["EXPERIMENT_GUARDRAIL_MIN_VOTES", "20", { votes: 25, bothBad: 20 }, {}, "promote", "stop_untrustworthy"],
    ["EXPERIMENT_GUARDRAIL_MIN_VOTES", "150", { bothBad: 80 }, {}, "stop_untrustworthy", "promote"],
  ] as const)(
    "%s=%s with challenger %j, control %j: %s → %s",
    (variable, value, challenger, control, before, after) => {
      const at = decide({}, challenger, control);
      expect(at.action).toBe(before);
      const changed = decide({ [variable]: value }, challenger, control);
      expect(changed.action).toBe(after);
      // the alarm (or its absence) is the changed limit's doing, and the settings carry the limit
      expect(at.alarms.length + changed.alarms.length).toBe(1);
      expect(changed.settings[limitOf[variable]]).toBe(Number(value));
    },
  );

  it.each([
    ["EXPERIMENT_GUARDRAIL_FAILURE_RATE", "1.5", "must be between 0 and 1"],
    ["EXPERIMENT_GUARDRAIL_FAILURE_RATE", "-0.1", "must be between 0 and 1"],
    ["EXPERIMENT_GUARDRAIL_BOTH_BAD_RATE", "half", "must be a number"],
    ["EXPERIMENT_GUARDRAIL_LATENCY_RATIO", "0.5", "must be at least 1 (the control's own latency)"],
    ["EXPERIMENT_GUARDRAIL_MIN_GENERATIONS", "0", "must be > 0"],
    ["EXPERIMENT_GUARDRAIL_MIN_GENERATIONS", "2.5", "must be an integer"],
    ["EXPERIMENT_GUARDRAIL_MIN_VOTES", "-3", "must be > 0"],
  ])("refuses %s=%s: %s", (variable, value, message) => {
    let err: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(`${variable} ${message} (got ${JSON.stringify(value)})`);
  });
});
