/**
 * The decision rule of an experiment, as pure functions over numbers the statistics already
 * computed (no statistic is computed here: the intervals come from `domain/stats`).
 *
 * Per challenger arm, against the bar `0.5 + margin` on P(challenger ≻ control):
 * - fewer than `minVotes` usable votes: keep collecting;
 * - the anytime-valid lower bound above the bar: the arm may be promoted;
 * - the upper bound below the bar: retired (it cannot beat the control);
 * - `maxVotes` votes and still undecided: retired;
 * - a guardrail on the arm (generation failures, both-bad rate, latency): stopped as untrustworthy.
 *
 * For the experiment: a sample-ratio-mismatch alarm, or a guardrail on the control arm, stops
 * the whole experiment as untrustworthy; otherwise the best arm that may be promoted is promoted
 * (highest estimate, then highest lower bound); once no challenger is left collecting, the
 * experiment ends with every challenger retired (or stopped, when a guardrail stopped any).
 */

export type ArmState = "collecting" | "promote" | "retire" | "stopped";
export type ExperimentAction = "continue" | "promote" | "retire" | "stop_untrustworthy";

export interface DecisionSettings {
  /** Promote when the lower bound exceeds 0.5 + margin; retire when the upper bound is below it. */
  margin: number;
  minVotes: number;
  maxVotes: number;
}

/** What the statistics say about one challenger arm (its interval is the anytime-valid one). */
export interface ArmEvidence {
  arm: string;
  n: number;
  estimate: number;
  lower: number;
  upper: number;
  /** Taken out of the experiment by an earlier decision (retired or stopped): keeps that state. */
  settled?: { state: "retire" | "stopped"; reason: string } | undefined;
}

export interface SrmReading {
  /** What was checked, e.g. `arm allocation` or `left/right placement`. */
  check: string;
  pValue: number;
  alarm: boolean;
}

export interface GuardrailAlarm {
  arm: string;
  code: "generation_failures" | "both_bad_rate" | "latency";
  reason: string;
  value: number;
  limit: number;
}

export interface ArmVerdict {
  arm: string;
  state: ArmState;
  reason: string;
}

export interface ExperimentVerdict {
  action: ExperimentAction;
  /** The arm promoted (for `promote`), else null. */
  arm: string | null;
  reason: string;
  /** The bar the intervals were compared with: 0.5 + margin. */
  bar: number;
  arms: ArmVerdict[];
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

/** One challenger arm's state under the rule (guardrails and SRM are applied by `decideExperiment`). */
export function judgeArm(e: ArmEvidence, s: DecisionSettings): ArmVerdict {
  const bar = 0.5 + s.margin;
  if (e.settled) return { arm: e.arm, state: e.settled.state, reason: e.settled.reason };
  if (e.n < s.minVotes)
    return { arm: e.arm, state: "collecting", reason: `${e.n} of ${s.minVotes} votes before any decision` };
  if (e.lower > bar)
    return {
      arm: e.arm,
      state: "promote",
      reason: `lower bound ${pct(e.lower)} of P(${e.arm} ≻ control) is above ${pct(bar)} after ${e.n} votes`,
    };
  if (e.upper < bar)
    return {
      arm: e.arm,
      state: "retire",
      reason: `upper bound ${pct(e.upper)} of P(${e.arm} ≻ control) is below ${pct(bar)} after ${e.n} votes`,
    };
  if (e.n >= s.maxVotes)
    return {
      arm: e.arm,
      state: "retire",
      reason: `undecided at the cap of ${s.maxVotes} votes (interval ${pct(e.lower)}–${pct(e.upper)} contains ${pct(bar)})`,
    };
  return {
    arm: e.arm,
    state: "collecting",
    reason: `interval ${pct(e.lower)}–${pct(e.upper)} still contains ${pct(bar)} after ${e.n} votes`,
  };
}

/** Orders arms that may be promoted: the highest estimate first, then the highest lower bound. */
function best(candidates: ArmEvidence[]): ArmEvidence | undefined {
  return [...candidates].sort(
    (x, y) => y.estimate - x.estimate || y.lower - x.lower || (x.arm < y.arm ? -1 : 1),
  )[0];
}

export function decideExperiment(input: {
  control: string;
  arms: ArmEvidence[];
  settings: DecisionSettings;
  srm: SrmReading[];
  guardrails: GuardrailAlarm[];
}): ExperimentVerdict {
  const { control, settings } = input;
  const bar = 0.5 + settings.margin;
  const srm = input.srm.filter((r) => r.alarm);
  const controlAlarms = input.guardrails.filter((g) => g.arm === control);
  const verdicts = input.arms.map((e): ArmVerdict => {
    const alarm = input.guardrails.find((g) => g.arm === e.arm);
    if (!e.settled && alarm) return { arm: e.arm, state: "stopped", reason: alarm.reason };
    return judgeArm(e, settings);
  });

  if (srm.length > 0 || controlAlarms.length > 0) {
    const why = [
      ...srm.map((r) => `sample ratio mismatch in ${r.check} (p = ${r.pValue.toPrecision(3)})`),
      ...controlAlarms.map((g) => `control arm: ${g.reason}`),
    ].join("; ");
    return {
      action: "stop_untrustworthy",
      arm: null,
      reason: why,
      bar,
      arms: verdicts.map((v) =>
        v.state === "collecting" || v.state === "promote" ? { ...v, state: "stopped", reason: why } : v,
      ),
    };
  }

  const promotable = input.arms.filter((_, i) => verdicts[i]?.state === "promote");
  const winner = best(promotable);
  if (winner) {
    const reason = (verdicts.find((v) => v.arm === winner.arm) as ArmVerdict).reason;
    return {
      action: "promote",
      arm: winner.arm,
      reason,
      bar,
      arms: verdicts.map((v) =>
        v.arm === winner.arm || v.state !== "collecting"
          ? v
          : {
              ...v,
              state: "retire",
              reason: `${winner.arm} was promoted while this arm was undecided (${v.reason})`,
            },
      ),
    };
  }

  if (verdicts.some((v) => v.state === "collecting"))
    return { action: "continue", arm: null, reason: "collecting votes", bar, arms: verdicts };

  const stopped = verdicts.filter((v) => v.state === "stopped");
  if (stopped.length > 0)
    return {
      action: "stop_untrustworthy",
      arm: null,
      reason: stopped.map((v) => `${v.arm}: ${v.reason}`).join("; "),
      bar,
      arms: verdicts,
    };
  return {
    action: "retire",
    arm: null,
    reason:
      verdicts.length === 1
        ? (verdicts[0] as ArmVerdict).reason
        : `no challenger beat the control: ${verdicts.map((v) => `${v.arm}: ${v.reason}`).join("; ")}`,
    bar,
    arms: verdicts,
  };
}

/**
 * Limits of the guardrails (EXPERIMENT_GUARDRAIL_* in the configuration), frozen into an
 * experiment's settings when it starts.
 */
export interface GuardrailLimits {
  /** An arm whose share of failed generations exceeds this is stopped. */
  maxFailureRate: number;
  /** A challenger whose votes are "both bad" more often than this is stopped. */
  maxBothBadRate: number;
  /** A challenger whose median generation latency exceeds the control's by this factor is stopped. */
  maxLatencyRatio: number;
  /** Generations an arm needs before its failure rate or latency is judged. */
  minGenerations: number;
  /** Votes a challenger needs before its both-bad rate is judged. */
  minVotesForBothBad: number;
}

/** The configuration's defaults. */
export const DEFAULT_GUARDRAILS: GuardrailLimits = {
  maxFailureRate: 0.05,
  maxBothBadRate: 0.5,
  maxLatencyRatio: 2,
  minGenerations: 20,
  minVotesForBothBad: 30,
};

/** What the database says about one arm's generations and votes. */
export interface ArmOperations {
  arm: string;
  generations: number;
  failed: number;
  /** Median latency of the arm's succeeded generations (null when none). */
  latencyMedianMs: number | null;
  votes: number;
  bothBad: number;
}

/** The guardrails that fire, per arm. Both-bad and latency are judged for challengers only. */
export function guardrailAlarms(
  control: string,
  ops: ArmOperations[],
  limits: GuardrailLimits,
): GuardrailAlarm[] {
  const alarms: GuardrailAlarm[] = [];
  const controlOps = ops.find((o) => o.arm === control);
  for (const o of ops) {
    const finished = o.generations;
    if (finished >= limits.minGenerations && o.failed / finished > limits.maxFailureRate) {
      const rate = o.failed / finished;
      alarms.push({
        arm: o.arm,
        code: "generation_failures",
        reason: `${o.failed} of ${finished} generations failed (${pct(rate)} > ${pct(limits.maxFailureRate)})`,
        value: rate,
        limit: limits.maxFailureRate,
      });
    }
    if (o.arm === control) continue;
    if (o.votes >= limits.minVotesForBothBad && o.bothBad / o.votes > limits.maxBothBadRate) {
      const rate = o.bothBad / o.votes;
      alarms.push({
        arm: o.arm,
        code: "both_bad_rate",
        reason: `${o.bothBad} of ${o.votes} votes said both images are bad (${pct(rate)} > ${pct(limits.maxBothBadRate)})`,
        value: rate,
        limit: limits.maxBothBadRate,
      });
    }
    const base = controlOps?.latencyMedianMs;
    if (
      base &&
      o.latencyMedianMs !== null &&
      o.generations >= limits.minGenerations &&
      (controlOps?.generations ?? 0) >= limits.minGenerations &&
      o.latencyMedianMs / base > limits.maxLatencyRatio
    ) {
      const ratio = o.latencyMedianMs / base;
      alarms.push({
        arm: o.arm,
        code: "latency",
        reason: `median generation latency ${Math.round(o.latencyMedianMs)} ms is ${ratio.toFixed(2)}× the control's ${Math.round(base)} ms (limit ${limits.maxLatencyRatio}×)`,
        value: ratio,
        limit: limits.maxLatencyRatio,
      });
    }
  }
  return alarms;
}

/** The outcome of one vote in the challenger's view, from the stored pair and choice. */
export type ChallengerResult = "win" | "loss" | "tie" | "both_bad";

/**
 * Reads one experiment vote: which challenger it was about, whether that challenger was shown on
 * the left, and the result in its view. Null when the pair does not set the control against one
 * challenger (a malformed pair is never guessed at).
 */
export function readExperimentVote(
  control: string,
  v: { armA: string | null; armB: string | null; leftIs: "a" | "b" | null; choice: string },
): { challenger: string; challengerOnLeft: boolean; result: ChallengerResult } | null {
  if (v.armA === null || v.armB === null || v.leftIs === null) return null;
  let challengerSide: "a" | "b";
  if (v.armA === control && v.armB !== control) challengerSide = "b";
  else if (v.armB === control && v.armA !== control) challengerSide = "a";
  else return null;
  const challenger = (challengerSide === "a" ? v.armA : v.armB) as string;
  const challengerOnLeft = v.leftIs === challengerSide;
  if (v.choice === "tie" || v.choice === "both_bad")
    return { challenger, challengerOnLeft, result: v.choice };
  if (v.choice !== "left" && v.choice !== "right") return null;
  const challengerChosen = (v.choice === "left") === challengerOnLeft;
  return { challenger, challengerOnLeft, result: challengerChosen ? "win" : "loss" };
}

/**
 * The allocation after a decision: arms that are no longer collecting get no more traffic; the
 * control keeps its weight. Unchanged when every challenger is still collecting.
 */
export function allocationAfter(
  arms: readonly { name: string }[],
  allocation: readonly number[],
  verdicts: readonly ArmVerdict[],
): number[] {
  return arms.map((a, i) => {
    if (i === 0) return allocation[0] ?? 0;
    const v = verdicts.find((x) => x.arm === a.name);
    return v && v.state !== "collecting" ? 0 : (allocation[i] ?? 0);
  });
}
