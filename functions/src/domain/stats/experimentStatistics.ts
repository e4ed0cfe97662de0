/**
 * The numbers an A/B experiment between a control (the champion) and one or more challengers is
 * judged by, from its votes. Every vote is an outcome from the challenger's point of view: 1 win,
 * 0 loss, ½ tie or both bad; p = P(challenger ≻ champion) is their mean.
 *
 * Per challenger arm:
 * - an anytime-valid interval for p (`confidenceSequence.ts`, votes clustered by voter) at level
 *   α / (number of challengers), so that the chance any arm's interval ever misses its p stays
 *   below α however often it is looked at (Bonferroni across arms);
 * - the mixture e-value against p = ½ and its always-valid p-value 1/e (at this look; compare
 *   with `alphaPerArm`);
 * - Bayesian chance to win, P(p > ½): a flat prior and the normal approximation with the same
 *   cluster-robust standard error. A second reading only, never the decision;
 * - the position effect: the left image's win rate (ties ½) with its own interval, estimate =
 *   rate − ½. Placement is random, so this measures voters' left/right habit, not the models.
 */
import normalCdf from "@stdlib/stats-base-dists-normal-cdf";
import { ClusteredMean } from "./clusteredMean.js";
import {
  type BoundaryOptions,
  confidenceInterval,
  DEFAULT_TUNING_VOTES,
  mixtureEValue,
  PRIOR_VOTER_VARIANCE,
  PRIOR_VOTERS,
  regularizedVariance,
} from "./confidenceSequence.js";

export type VoteResult = "win" | "loss" | "tie" | "both_bad";

export interface ExperimentOutcome {
  arm: string;
  voterId: string;
  /** From the challenger's point of view. */
  result: VoteResult;
  challengerOnLeft: boolean;
  /** Milliseconds since the epoch, when known. */
  at?: number;
}

export interface ExperimentInput extends BoundaryOptions {
  control: string;
  /** The challengers. */
  arms: string[];
  outcomes: ExperimentOutcome[];
  alpha: number;
  /** Promotion needs the lower bound above ½ + margin (recorded here, applied by the decision rule). */
  margin: number;
}

export interface ArmStatistics {
  arm: string;
  n: number;
  wins: number;
  losses: number;
  ties: number;
  bothBad: number;
  voters: number;
  /** Mean outcome: the estimate of p = P(challenger ≻ control). */
  estimate: number;
  /** Anytime-valid bounds for p at level `alphaPerArm`. */
  lower: number;
  upper: number;
  /** Mixture e-value against p = ½. */
  eValue: number;
  /** Always-valid p-value against p = ½ at this look (min(1, 1/eValue)). */
  pValue: number;
  /** Bayesian P(p > ½), a second reading. */
  chanceToWin: number;
  positionEffect: { leftWinRate: number; estimate: number; lower: number; upper: number };
}

export interface ExperimentStatistics {
  control: string;
  alpha: number;
  alphaPerArm: number;
  margin: number;
  arms: ArmStatistics[];
  method: {
    name: string;
    formula: string;
    tuningVotes: number;
    /** Pseudo-voters g₀ and prior voter variance τ₀² of the variance shrinkage. */
    priorVoters: number;
    priorVoterVariance: number;
    /** Pseudo-votes at variance ¼: none (the shrinkage is by voters); kept for records written before. */
    priorVotes: number;
  };
}

/** The outcome of a vote for the challenger: 1, ½ or 0. */
export function outcomeValue(result: VoteResult): number {
  return result === "win" ? 1 : result === "loss" ? 0 : 0.5;
}

/** The outcome for the image shown on the left: 1 when it won, ½ for a tie or both bad. */
export function leftOutcome(o: Pick<ExperimentOutcome, "result" | "challengerOnLeft">): number {
  const y = outcomeValue(o.result);
  return o.challengerOnLeft ? y : 1 - y;
}

export const METHOD_NAME =
  "normal-mixture confidence sequence, voter-clustered variance, Bonferroni across arms";
export const METHOD_FORMULA =
  "p̂ ± σ̃·√(2(nρ²+1)·ln(√(nρ²+1)/α_arm))/(nρ); ρ = √((−2 ln α_arm + ln(1 − 2 ln α_arm))/T); " +
  "σ̃² = (G·σ̂² + g₀·σ₀²)/(G + g₀), σ̂² = max(G/(G−1)·Σ_v (S_v − n_v p̂)²/n, s²), σ₀² = ¼ + (Σn_v²/n − 1)·τ₀²; α_arm = α/K";

export function experimentStatistics(input: ExperimentInput): ExperimentStatistics {
  const { alpha, arms } = input;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError("alpha must lie strictly between 0 and 1");
  if (arms.length === 0) throw new RangeError("at least one challenger arm is needed");
  const alphaPerArm = alpha / arms.length;
  const opts: BoundaryOptions = { tuningVotes: input.tuningVotes, priorVoters: input.priorVoters };
  const armStats = arms.map((arm) => {
    const votes = input.outcomes.filter((o) => o.arm === arm);
    const p = new ClusteredMean();
    const left = new ClusteredMean();
    const count = { win: 0, loss: 0, tie: 0, both_bad: 0 };
    for (const o of votes) {
      p.add(o.voterId, outcomeValue(o.result));
      left.add(o.voterId, leftOutcome(o));
      count[o.result]++;
    }
    const s = p.summary();
    const ci = confidenceInterval(s, alphaPerArm, opts);
    const eValue = mixtureEValue(s, 0.5, alphaPerArm, opts);
    const se = Math.sqrt(regularizedVariance(s, opts.priorVoters) / Math.max(1, s.n));
    const chanceToWin = s.n === 0 ? 0.5 : normalCdf(s.mean, 0.5, se);
    const l = confidenceInterval(left.summary(), alphaPerArm, opts);
    return {
      arm,
      n: s.n,
      wins: count.win,
      losses: count.loss,
      ties: count.tie,
      bothBad: count.both_bad,
      voters: s.voters,
      estimate: ci.estimate,
      lower: ci.lower,
      upper: ci.upper,
      eValue,
      pValue: Math.min(1, 1 / eValue),
      chanceToWin,
      positionEffect: {
        leftWinRate: l.estimate,
        estimate: l.estimate - 0.5,
        lower: l.lower - 0.5,
        upper: l.upper - 0.5,
      },
    };
  });
  return {
    control: input.control,
    alpha,
    alphaPerArm,
    margin: input.margin,
    arms: armStats,
    method: {
      name: METHOD_NAME,
      formula: METHOD_FORMULA,
      tuningVotes: input.tuningVotes ?? DEFAULT_TUNING_VOTES,
      priorVoters: input.priorVoters ?? PRIOR_VOTERS,
      priorVoterVariance: PRIOR_VOTER_VARIANCE,
      priorVotes: 0,
    },
  };
}
