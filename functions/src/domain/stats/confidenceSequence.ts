/**
 * An anytime-valid confidence sequence for the mean of bounded outcomes clustered by voter: the
 * normal-mixture boundary of Robbins (the asymptotic confidence sequence of Waudby-Smith et al.,
 * arXiv 2103.06476, which GrowthBook's sequential test also uses) applied with a cluster-robust
 * variance (`clusteredMean.ts`).
 *
 *   half-width(n) = σ̃ · √( 2(nρ² + 1) · ln(√(nρ² + 1) / α) ) / (nρ)
 *   ρ   = √( (−2 ln α + ln(1 − 2 ln α)) / T )       (T: the votes the boundary is tightest near)
 *   σ̂²  = max( n·V̂, s² )                            (V̂ cluster-robust variance of the mean, s² the
 *                                                     votes' plain variance)
 *   σ₀² = 1/4 + (m − 1)·τ₀²                          (m = Σ n_v²/n, τ₀² = 0.04)
 *   σ̃²  = (G·σ̂² + g₀·σ₀²) / (G + g₀)                (G voters, g₀ = 20 pseudo-voters)
 *
 * Why this one (STATISTICS.md has the long version): betting confidence sequences for bounded
 * outcomes are exact, but only when each new outcome has mean p given the past; a voter's next
 * vote is predictable from their earlier ones (each voter has a taste of their own), so that
 * martingale does not exist for clustered votes. The voter sums do behave like independent
 * draws, so a boundary in the cluster-robust variance is valid as voters accumulate.
 *
 * The variance is never below the plain variance of the votes (a noisy cluster estimate cannot
 * claim clustered votes carry more information than independent ones), and it is shrunk, with
 * the weight of g₀ voters, toward σ₀²: the variance per vote when voters' own preferences spread
 * with sd τ₀ = 0.2 around p. With few voters — the first hour of an experiment, or one person
 * voting fifty times in a row — the sandwich estimate rests on a handful of clusters and is far
 * too small; the prior keeps those looks honest, and it fades as voters accumulate.
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
/** Pseudo-voters the variance is shrunk toward σ₀² with. */
export const PRIOR_VOTERS = 20;
/** Prior variance of voters' own p around the population's (sd 0.2). */
export const PRIOR_VOTER_VARIANCE = 0.04;

export interface BoundaryOptions {
  /** Votes the boundary is tightest near. */
  tuningVotes?: number;
  /** Pseudo-voters of the variance shrinkage. */
  priorVoters?: number;
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

/** The per-vote variance the boundary uses: cluster-robust, at least the plain one, shrunk toward σ₀². */
export function regularizedVariance(s: ClusteredMeanSummary, priorVoters = PRIOR_VOTERS): number {
  const prior = 0.25 + Math.max(0, s.clusterSize - 1) * PRIOR_VOTER_VARIANCE;
  if (s.voters < 2) return prior;
  const perVote = Math.max(s.n * s.varianceOfMean, s.variance);
  return (s.voters * perVote + priorVoters * prior) / (s.voters + priorVoters);
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
  const sigma = Math.sqrt(regularizedVariance(s, opts.priorVoters));
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
  const variance = regularizedVariance(s, opts.priorVoters);
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
