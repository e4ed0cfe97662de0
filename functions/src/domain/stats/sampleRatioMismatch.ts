/**
 * Sample ratio mismatch: are counts (left/right placements, votes per arm) in the proportions
 * they were allocated in? The sequential Dirichlet–multinomial test of Lindon & Malek
 * ("Anytime-valid inference for multinomial count data", 2022; Optimizely's `ssrm-test`):
 *
 *   BF = Γ(A)/Γ(A + n) · ∏ Γ(a_i + x_i)/Γ(a_i) / ∏ p_i^{x_i},   a_i = c·p_i, A = Σ a_i = c
 *
 * (c, the prior's concentration, default 1,000). The Bayes factor is a nonnegative martingale
 * under the expected proportions and depends on the counts only, so it can be recomputed from
 * the totals at each look: the test fires the first time 1/BF < α, and P(it ever fires) ≤ α.
 * The always-valid p-value is the running minimum of 1/BF; pass the earlier looks' counts as
 * `history` to get it, otherwise `pValue` is this look's 1/BF and the caller keeps the alarm
 * once raised (which is the same test).
 *
 * Pearson's χ² p-value (fixed-horizon, not valid under repeated looks) is reported beside it,
 * and used as the fallback rule (alarm at p < 0.001) only when the sequential one cannot be
 * computed: an expected share of 0 with counts in that cell.
 */
import gammaln from "@stdlib/math-base-special-gammaln";
import chisquareCdf from "@stdlib/stats-base-dists-chisquare-cdf";

export const DEFAULT_CONCENTRATION = 1000;
export const CHI_SQUARE_FALLBACK_P = 0.001;

export interface SrmResult {
  pValue: number;
  alarm: boolean;
  method: "dirichlet-multinomial" | "chi-square";
  /** log of this look's Bayes factor (NaN when the χ² fallback was used). */
  logBayesFactor: number;
  chiSquarePValue: number;
  observedShares: number[];
}

/** log BF of the Dirichlet–multinomial alternative against the expected proportions. */
export function srmLogBayesFactor(
  counts: readonly number[],
  shares: readonly number[],
  concentration = DEFAULT_CONCENTRATION,
): number {
  const n = counts.reduce((a, b) => a + b, 0);
  let log = gammaln(concentration) - gammaln(concentration + n);
  counts.forEach((x, i) => {
    const p = shares[i] as number;
    const a = concentration * p;
    log += gammaln(a + x) - gammaln(a) - (x > 0 ? x * Math.log(p) : 0);
  });
  return log;
}

/** Pearson's χ² p-value of counts against expected shares (cells expected at 0 are left out). */
export function chiSquarePValue(counts: readonly number[], shares: readonly number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  if (n === 0) return 1;
  let stat = 0;
  let cells = 0;
  counts.forEach((x, i) => {
    const e = n * (shares[i] as number);
    if (e > 0) {
      stat += (x - e) ** 2 / e;
      cells++;
    } else if (x > 0) stat = Number.POSITIVE_INFINITY;
  });
  if (cells < 2) return stat === Number.POSITIVE_INFINITY ? 0 : 1;
  return 1 - chisquareCdf(stat, cells - 1);
}

/**
 * The test at counts `counts` against allocation `expected` (any positive weights; normalised),
 * at level α. `history`: the counts at earlier looks, for the running-minimum p-value.
 */
export function sampleRatioMismatch(
  counts: readonly number[],
  expected: readonly number[],
  alpha: number,
  opts: { concentration?: number; history?: readonly (readonly number[])[] } = {},
): SrmResult {
  if (counts.length !== expected.length || counts.length < 2)
    throw new RangeError("counts and expected need the same length, at least 2");
  if (counts.some((x) => !Number.isInteger(x) || x < 0))
    throw new RangeError("counts must be whole numbers ≥ 0");
  const total = expected.reduce((a, b) => a + b, 0);
  if (!(total > 0) || expected.some((w) => !(w >= 0)))
    throw new RangeError("expected weights must be ≥ 0 with a positive sum");
  const shares = expected.map((w) => w / total);
  const n = counts.reduce((a, b) => a + b, 0);
  const observedShares = counts.map((x) => (n > 0 ? x / n : 0));
  const chi = chiSquarePValue(counts, shares);
  const impossible = counts.some((x, i) => x > 0 && shares[i] === 0);
  if (impossible)
    return {
      pValue: chi,
      alarm: chi < CHI_SQUARE_FALLBACK_P,
      method: "chi-square",
      logBayesFactor: Number.NaN,
      chiSquarePValue: chi,
      observedShares,
    };
  const live = shares.map((p, i) => ({ p, i })).filter((c) => c.p > 0);
  const logBf = (xs: readonly number[]) =>
    srmLogBayesFactor(
      live.map((c) => xs[c.i] as number),
      live.map((c) => c.p),
      opts.concentration,
    );
  const logBayesFactor = logBf(counts);
  let pValue = Math.min(1, Math.exp(-logBayesFactor));
  for (const past of opts.history ?? []) pValue = Math.min(pValue, Math.exp(-logBf(past)));
  return {
    pValue,
    alarm: pValue < alpha,
    method: "dirichlet-multinomial",
    logBayesFactor,
    chiSquarePValue: chi,
    observedShares,
  };
}
