/**
 * An anytime-valid confidence sequence for the mean of bounded outcomes clustered by voter: the
 * normal-mixture boundary of Robbins (the asymptotic confidence sequence of Waudby-Smith et al.,
 * arXiv 2103.06476, which GrowthBook's sequential test also uses) applied with the
 * cluster-robust variance of `clusteredMean.ts`.
 *
 *   half-width(n) = σ̃ · √( 2(nρ² + 1) · ln(√(nρ² + 1) / α) ) / (nρ)
 *   ρ = √( (−2 ln α + ln(1 − 2 ln α)) / T )        (T: the votes the boundary is tightest near)
 *   σ̃² = (n·σ̂² + k₀/4) / (n + k₀),  σ̂² = max(n·V̂, s²)   (V̂ the cluster-robust variance of the
 *                                                         mean, s² the votes' plain variance)
 *
 * Why this one (STATISTICS.md has the long version): betting confidence sequences for bounded
 * outcomes are exact, but only when each new outcome has mean p given the past; a voter's next
 * vote is predictable from their earlier ones (each voter has a taste of their own), so that
 * martingale does not exist for clustered votes. The voter sums do behave like independent
 * draws, so a boundary in the cluster-robust variance is valid as voters accumulate.
 * Taking the larger of the clustered and the plain variance never lets a noisy cluster estimate
 * claim that votes are more informative than independent ones. The shrinkage toward the largest variance a [0, 1] outcome can have (k₀ = 10 pseudo-votes at
 * 1/4) keeps the first looks honest, when a handful of votes can show no spread at all.
 *
 * The matching e-value for "p = p₀" is the mixture martingale
 *   M = (nρ² + 1)^(−1/2) · exp( ρ² n² (p̂ − p₀)² / (2σ̃² (nρ² + 1)) ),
 * and p₀ is outside the interval exactly when M ≥ 1/α. 1/M is an always-valid p-value at this
 * look; the smallest 1/M over all looks so far (`confidenceSequencePath`) is the running one.
 */
import type { ClusteredMeanSummary } from "./clusteredMean.js";
import { ClusteredMean } from "./clusteredMean.js";

/** Votes the boundary is tuned for (GrowthBook's default is 5,000). */
export const DEFAULT_TUNING_VOTES = 500;
/** Pseudo-votes at the largest possible variance (1/4) that the variance is shrunk toward. */
export const PRIOR_VOTES = 10;

export interface BoundaryOptions {
  /** Votes the boundary is tightest near. */
  tuningVotes?: number;
  /** Pseudo-votes of the variance shrinkage. */
  priorVotes?: number;
}

/** ρ of the normal mixture tuned for `tuningVotes` at level α. */
export function mixtureRho(alpha: number, tuningVotes: number): number {
  const l = Math.log(alpha);
  return Math.sqrt((-2 * l + Math.log(1 - 2 * l)) / tuningVotes);
}

/** Half-width of the normal-mixture boundary at n outcomes with per-outcome standard deviation σ. */
export function mixtureHalfWidth(n: number, sigma: number, alpha: number, rho: number): number {
  if (n <= 0) return Number.POSITIVE_INFINITY;
  const v = n * rho * rho + 1;
  return (sigma * Math.sqrt(2 * v * Math.log(Math.sqrt(v) / alpha))) / (n * rho);
}

/** The per-vote variance the boundary uses: cluster-robust, shrunk toward 1/4 by k₀ pseudo-votes. */
export function regularizedVariance(s: ClusteredMeanSummary, priorVotes = PRIOR_VOTES): number {
  if (s.voters < 2) return 0.25;
  const perVote = Math.max(s.n * s.varianceOfMean, s.variance);
  return (s.n * perVote + priorVotes * 0.25) / (s.n + priorVotes);
}

export interface Interval {
  n: number;
  voters: number;
  estimate: number;
  lower: number;
  upper: number;
  /** Standard deviation per vote the boundary used. */
  sigma: number;
}

/** The confidence sequence's interval at this look (all of [0, 1] with fewer than two voters). */
export function confidenceInterval(
  s: ClusteredMeanSummary,
  alpha: number,
  opts: BoundaryOptions = {},
): Interval {
  const sigma = Math.sqrt(regularizedVariance(s, opts.priorVotes));
  if (s.n === 0 || s.voters < 2)
    return { n: s.n, voters: s.voters, estimate: s.n ? s.mean : Number.NaN, lower: 0, upper: 1, sigma };
  const rho = mixtureRho(alpha, opts.tuningVotes ?? DEFAULT_TUNING_VOTES);
  const h = mixtureHalfWidth(s.n, sigma, alpha, rho);
  return {
    n: s.n,
    voters: s.voters,
    estimate: s.mean,
    lower: Math.max(0, s.mean - h),
    upper: Math.min(1, s.mean + h),
    sigma,
  };
}

/** The mixture e-value against "the mean is p0" at this look (1 with fewer than two voters). */
export function mixtureEValue(
  s: ClusteredMeanSummary,
  p0: number,
  alpha: number,
  opts: BoundaryOptions = {},
): number {
  if (s.n === 0 || s.voters < 2) return 1;
  const rho = mixtureRho(alpha, opts.tuningVotes ?? DEFAULT_TUNING_VOTES);
  const v = s.n * rho * rho + 1;
  const variance = regularizedVariance(s, opts.priorVotes);
  const z2 = (s.n * (s.mean - p0)) ** 2 / variance;
  return Math.exp((rho * rho * z2) / (2 * v)) / Math.sqrt(v);
}

export interface PathPoint extends Interval {
  /** Time of the look's last vote, when the votes carried one. */
  at?: number;
  /** Running always-valid p-value for "p = p0" (smallest 1/e-value so far). */
  pValue: number;
}

/**
 * The interval after every `every` outcomes (and after the last), in the order given: the data of
 * a "win rate with its band over votes" chart. The running p-value is for `p0` (default ½).
 */
export function confidenceSequencePath(
  outcomes: readonly { voterId: string; y: number; at?: number }[],
  alpha: number,
  opts: BoundaryOptions & { every?: number; p0?: number } = {},
): PathPoint[] {
  const every = Math.max(1, Math.floor(opts.every ?? 1));
  const acc = new ClusteredMean();
  const path: PathPoint[] = [];
  let pValue = 1;
  outcomes.forEach((o, i) => {
    acc.add(o.voterId, o.y);
    const s = acc.summary();
    pValue = Math.min(pValue, 1 / mixtureEValue(s, opts.p0 ?? 0.5, alpha, opts));
    if ((i + 1) % every === 0 || i === outcomes.length - 1)
      path.push({
        ...confidenceInterval(s, alpha, opts),
        ...(o.at === undefined ? {} : { at: o.at }),
        pValue,
      });
  });
  return path;
}
