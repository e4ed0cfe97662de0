/**
 * The statistics an experiment reads, from `domain/stats` (the one implementation): per
 * challenger the anytime-valid interval of P(challenger ≻ control) with α split across the
 * challengers, the interval's path over time, and the sample-ratio-mismatch checks (arm
 * allocation, left/right placement). Nothing is computed here beyond choosing the inputs.
 */
import type { SrmReading } from "../domain/experimentDecision.js";
import type { Arm } from "../domain/pairing.js";
import {
  confidenceSequencePath,
  type ExperimentStatistics,
  outcomeValue,
  type PathPoint,
  sampleRatioMismatch,
  experimentStatistics as statisticsOfOutcomes,
} from "../domain/stats/index.js";
import type { ExperimentOutcome } from "./evidence.js";
import type { ExperimentSettings } from "./settings.js";

export type { ArmStatistics, ExperimentStatistics } from "../domain/stats/index.js";

/** Votes between two looks of the sequential SRM test (its p-value is the running minimum over looks). */
export const SRM_LOOK_EVERY = 50;

const toStatsOutcomes = (outcomes: readonly ExperimentOutcome[]) =>
  outcomes.map((o) => ({
    arm: o.arm,
    voterId: o.voterId,
    result: o.result,
    challengerOnLeft: o.challengerOnLeft,
    at: o.at.getTime(),
  }));

export function experimentStatistics(
  arms: readonly Arm[],
  outcomes: readonly ExperimentOutcome[],
  settings: Pick<ExperimentSettings, "alpha" | "margin">,
): ExperimentStatistics {
  return statisticsOfOutcomes({
    control: (arms[0] as Arm).name,
    arms: arms.slice(1).map((a) => a.name),
    outcomes: toStatsOutcomes(outcomes),
    alpha: settings.alpha,
    margin: settings.margin,
  });
}

/** One challenger's interval after about every `1/points` of its votes (the "over time" chart). */
export function intervalOverTime(
  arms: readonly Arm[],
  outcomes: readonly ExperimentOutcome[],
  challenger: string,
  settings: Pick<ExperimentSettings, "alpha">,
  points = 50,
): PathPoint[] {
  const mine = outcomes.filter((o) => o.arm === challenger);
  const every = Math.max(1, Math.ceil(mine.length / points));
  return confidenceSequencePath(
    mine.map((o) => ({ voterId: o.voterId, y: outcomeValue(o.result), at: o.at.getTime() })),
    settings.alpha / Math.max(1, arms.length - 1),
    { every },
  );
}

/** Counts after every `SRM_LOOK_EVERY` outcomes, for the sequential test's running minimum. */
function looks(
  outcomes: readonly ExperimentOutcome[],
  cell: (o: ExperimentOutcome) => number,
  cells: number,
) {
  const counts = new Array<number>(cells).fill(0);
  const history: number[][] = [];
  outcomes.forEach((o, i) => {
    const c = cell(o);
    if (c >= 0) counts[c] = (counts[c] ?? 0) + 1;
    if ((i + 1) % SRM_LOOK_EVERY === 0) history.push([...counts]);
  });
  return { counts, history };
}

/**
 * The sample-ratio-mismatch checks: left/right placement of the challenger (expected ½ each),
 * and, with several challengers, their share of the votes against the allocation — skipped once
 * an arm was taken out, since the allocation changed mid-way.
 */
export function srmReadings(
  arms: readonly Arm[],
  allocation: readonly number[],
  outcomes: readonly ExperimentOutcome[],
  alpha: number,
  allocationChanged: boolean,
): SrmReading[] {
  const out: SrmReading[] = [];
  const placement = looks(outcomes, (o) => (o.challengerOnLeft ? 0 : 1), 2);
  const p = sampleRatioMismatch(placement.counts, [0.5, 0.5], alpha, { history: placement.history });
  out.push({ check: "left/right placement", pValue: p.pValue, alarm: p.alarm });
  const challengers = arms.slice(1);
  const weights = challengers.map((_, i) => Math.max(0, allocation[i + 1] ?? 0));
  if (challengers.length > 1 && !allocationChanged && weights.some((w) => w > 0)) {
    const names = challengers.map((a) => a.name);
    const byArm = looks(outcomes, (o) => names.indexOf(o.arm), names.length);
    const r = sampleRatioMismatch(byArm.counts, weights, alpha, { history: byArm.history });
    out.push({ check: "arm allocation", pValue: r.pValue, alarm: r.alarm });
  }
  return out;
}
