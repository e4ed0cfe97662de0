/**
 * Rater quality: four sequential tests of one voter's votes, each an e-process so the voter can
 * be re-checked after every vote (see STATISTICS.md).
 *
 * - `one_side`: picks the same side (left or right) far more often than any honest voter would.
 *   H0: P(left) ≤ 0.75 (and, separately, P(right) ≤ 0.75) among left/right votes; alternatives
 *   0.9, 0.95, 0.99. Placement is random, so even a voter with a strong taste for one model sees it
 *   on each side half the time; 0.75 leaves room for a personal left bias.
 * - `gold_accuracy`: gold pairs show an image and a visibly degraded copy; picking the clean side is
 *   correct, the degraded side, a tie or "both bad" is wrong (the degraded copy is worse by
 *   construction). H0: accuracy ≥ 0.75; alternatives 0.5 (a coin) and 0.25 (a clicker over the four
 *   answers).
 * - `too_fast`: decides faster than `minDecisionMs` too often. H0: P(fast) ≤ 0.2; alternatives 0.5,
 *   0.8. Votes without a decision time are skipped.
 * - `outlier`: FastChat's `outlier_detect` e-test against the population: for each of the voter's
 *   first `maxVotes` votes, p_upper = P(R ≤ v) and p_lower = P(R ≥ v) for the population's
 *   outcomes R on the same model pair; M = ∏ 1/(2p) in each direction. Population outcomes are the
 *   other voters' wins and losses (ties left out, as FastChat does), and the p-values are
 *   conformal ((count + 1)/(N + 1), the vote itself counted in), which keeps them above 0 and
 *   valid when the population on a pair is small. Voters with fewer than `minVotes` votes are
 *   not tested.
 *
 * QUALITY_ALPHA (α) is the error rate per voter over all four tests: each gets α/4 (Bonferroni),
 * and two-direction tests (one side, outlier) α/8 per direction.
 */
import { bernoulliEProcess } from "./bernoulliEProcess.js";

export type VoteChoice = "left" | "right" | "tie" | "both_bad";

/** One vote as the rater-quality tests see it, in the order the voter cast them. */
export interface RaterVote {
  choice: VoteChoice;
  decisionMs: number | null;
  /** Gold pairs only: the side that shows the clean (undegraded) image. */
  goldCleanSide?: "left" | "right";
  /**
   * Non-gold votes: the voter's outcome v on the pair's orientation (1 = the first model of the
   * pair won, 0 = lost, 0.5 = tie or both bad) and the other voters' wins and losses on the same
   * model pair and orientation.
   */
  outlier?: { vote: 0 | 0.5 | 1; populationWins: number; populationLosses: number };
}

export interface RaterQualityOptions {
  alpha: number;
  minDecisionMs: number;
  /** Outlier test: voters with fewer votes are not tested (FastChat: 5). */
  minVotes?: number;
  /** Outlier test: only the first this many votes count (FastChat: 100). */
  maxVotes?: number;
}

export type RaterFlagCode = "one_side" | "gold_accuracy" | "too_fast" | "outlier";

export interface RaterFlag {
  code: RaterFlagCode;
  reason: string;
  numbers: Record<string, number>;
}

export interface RaterAssessment {
  flags: RaterFlag[];
  goldVotes: number;
  goldCorrect: number;
}

export const ONE_SIDE_NULL = 0.75;
export const ONE_SIDE_ALTERNATIVES = [0.9, 0.95, 0.99] as const;
export const GOLD_NULL = 0.75;
export const GOLD_ALTERNATIVES = [0.5, 0.25] as const;
export const FAST_NULL = 0.2;
export const FAST_ALTERNATIVES = [0.5, 0.8] as const;
const TESTS = 4;

/** FastChat's outlier e-values M_upper and M_lower, and the largest either reached. */
export function outlierEValues(
  votes: readonly { vote: number; populationWins: number; populationLosses: number }[],
  maxVotes = 100,
): { upper: number; lower: number; max: number; checked: number } {
  let logUp = 0;
  let logLo = 0;
  let max = 1;
  const n = Math.min(votes.length, maxVotes);
  for (let i = 0; i < n; i++) {
    const { vote, populationWins: w, populationLosses: l } = votes[i] as (typeof votes)[number];
    const total = w + l + 1;
    // Counts of population outcomes (plus this vote) at or below / at or above the vote.
    const atOrBelow = (vote >= 1 ? w : 0) + l + 1;
    const atOrAbove = w + (vote <= 0 ? l : 0) + 1;
    logUp -= Math.log((2 * atOrBelow) / total);
    logLo -= Math.log((2 * atOrAbove) / total);
    max = Math.max(max, Math.exp(logUp), Math.exp(logLo));
  }
  return { upper: Math.exp(logUp), lower: Math.exp(logLo), max, checked: n };
}

/** Runs the four tests over one voter's votes (in the order cast). */
export function assessRater(votes: readonly RaterVote[], opts: RaterQualityOptions): RaterAssessment {
  const { alpha, minDecisionMs } = opts;
  const minVotes = opts.minVotes ?? 5;
  const maxVotes = opts.maxVotes ?? 100;
  const perTest = TESTS / alpha;
  const perDirection = (2 * TESTS) / alpha;
  const flags: RaterFlag[] = [];

  const sides = votes
    .filter((v) => v.choice === "left" || v.choice === "right")
    .map((v) => v.choice === "left");
  if (sides.length > 0) {
    const left = bernoulliEProcess(sides, ONE_SIDE_NULL, ONE_SIDE_ALTERNATIVES);
    const right = bernoulliEProcess(
      sides.map((x) => !x),
      ONE_SIDE_NULL,
      ONE_SIDE_ALTERNATIVES,
    );
    const worst = left.max >= right.max ? { side: "left", e: left } : { side: "right", e: right };
    if (worst.e.max >= perDirection) {
      const leftShare = sides.filter(Boolean).length / sides.length;
      flags.push({
        code: "one_side",
        reason: `Picked the ${worst.side} image in ${Math.round((worst.side === "left" ? leftShare : 1 - leftShare) * 100)} % of ${sides.length} left/right votes (e-value ${worst.e.max.toFixed(0)} ≥ ${perDirection}).`,
        numbers: {
          votes: sides.length,
          leftShare,
          eValue: worst.e.max,
          threshold: perDirection,
          atVote: worst.e.maxAt,
        },
      });
    }
  }

  const gold = votes.filter((v) => v.goldCleanSide !== undefined);
  const correct = gold.map((v) => v.choice === v.goldCleanSide);
  const goldCorrect = correct.filter(Boolean).length;
  if (gold.length > 0) {
    const e = bernoulliEProcess(correct, GOLD_NULL, GOLD_ALTERNATIVES);
    if (e.max >= perTest) {
      flags.push({
        code: "gold_accuracy",
        reason: `Chose the clean image on ${goldCorrect} of ${gold.length} gold pairs (accuracy below ${GOLD_NULL}; e-value ${e.max.toFixed(0)} ≥ ${perTest}).`,
        numbers: {
          goldVotes: gold.length,
          goldCorrect,
          accuracy: goldCorrect / gold.length,
          eValue: e.max,
          threshold: perTest,
        },
      });
    }
  }

  const timed = votes
    .filter((v) => v.decisionMs !== null)
    .map((v) => (v.decisionMs as number) < minDecisionMs);
  if (timed.length > 0) {
    const e = bernoulliEProcess(timed, FAST_NULL, FAST_ALTERNATIVES);
    if (e.max >= perTest) {
      const fast = timed.filter(Boolean).length;
      flags.push({
        code: "too_fast",
        reason: `Decided in under ${minDecisionMs} ms on ${fast} of ${timed.length} timed votes (e-value ${e.max.toFixed(0)} ≥ ${perTest}).`,
        numbers: {
          timedVotes: timed.length,
          fastVotes: fast,
          fastShare: fast / timed.length,
          eValue: e.max,
          threshold: perTest,
        },
      });
    }
  }

  const tested = votes.flatMap((v) => (v.outlier && v.goldCleanSide === undefined ? [v.outlier] : []));
  if (tested.length >= minVotes) {
    const m = outlierEValues(tested, maxVotes);
    if (m.max >= perDirection) {
      flags.push({
        code: "outlier",
        reason: `Votes disagree with the other voters on the same model pairs far more than chance allows (FastChat's outlier e-test over ${m.checked} votes; e-value ${m.max.toFixed(0)} ≥ ${perDirection}).`,
        numbers: {
          votes: m.checked,
          eUpper: m.upper,
          eLower: m.lower,
          eValue: m.max,
          threshold: perDirection,
        },
      });
    }
  }
  return { flags, goldVotes: gold.length, goldCorrect };
}

/**
 * A vote's place in the outlier test: the model pair it compares (sorted, so both orders of the
 * same two models pool together) and the outcome for the pair's first model. Two images of the
 * same model (a data pair) are oriented by side: the left image is "first".
 */
export function orientVote(
  leftModel: string,
  rightModel: string,
  choice: VoteChoice,
): { unit: string; vote: 0 | 0.5 | 1 } {
  if (choice === "tie" || choice === "both_bad") {
    const [a, b] = leftModel <= rightModel ? [leftModel, rightModel] : [rightModel, leftModel];
    return { unit: `${a}\u0000${b}`, vote: 0.5 };
  }
  if (leftModel === rightModel)
    return { unit: `${leftModel}\u0000${rightModel}`, vote: choice === "left" ? 1 : 0 };
  const first = leftModel < rightModel ? leftModel : rightModel;
  const winner = choice === "left" ? leftModel : rightModel;
  const [a, b] = leftModel < rightModel ? [leftModel, rightModel] : [rightModel, leftModel];
  return { unit: `${a}\u0000${b}`, vote: winner === first ? 1 : 0 };
}
