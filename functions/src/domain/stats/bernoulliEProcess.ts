/**
 * Sequential tests of a rate with e-processes: likelihood ratios of a yes/no sequence against
 * the edge of a one-sided null, averaged over a few alternatives.
 *
 * For H0: rate ≤ p0 and an alternative q > p0, the running product of q/p0 (yes) and
 * (1 − q)/(1 − p0) (no) is a nonnegative supermartingale under every rate ≤ p0 (its expected
 * factor is 1 at p0 and below 1 under it); the same holds for H0: rate ≥ p0 with q < p0. An
 * average of such products is one too, so by Ville's inequality P(ever ≥ 1/α) ≤ α under H0:
 * a voter can be checked after every vote without inflating the error.
 */

export interface EProcessResult {
  /** The e-value after the last observation. */
  final: number;
  /** The largest value the process reached (what the test compares with 1/α). */
  max: number;
  /** Observations when the maximum was reached first (0 when it never rose above 1). */
  maxAt: number;
}

/**
 * The averaged likelihood-ratio e-process of `xs` (true = yes) against the boundary rate `p0`,
 * with alternatives `qs` (all above p0: tests rate ≤ p0; all below: tests rate ≥ p0).
 */
export function bernoulliEProcess(xs: readonly boolean[], p0: number, qs: readonly number[]): EProcessResult {
  if (!(p0 > 0 && p0 < 1)) throw new RangeError("p0 must lie strictly between 0 and 1");
  if (qs.length === 0) throw new RangeError("at least one alternative is needed");
  const above = qs.every((q) => q > p0 && q < 1);
  const below = qs.every((q) => q < p0 && q > 0);
  if (!above && !below) throw new RangeError("alternatives must all lie on one side of p0, inside (0, 1)");
  const logs = qs.map(() => 0);
  let max = 1;
  let maxAt = 0;
  let final = 1;
  for (let t = 0; t < xs.length; t++) {
    for (let k = 0; k < qs.length; k++) {
      const q = qs[k] as number;
      (logs[k] as number) += xs[t] ? Math.log(q / p0) : Math.log((1 - q) / (1 - p0));
    }
    final = logs.reduce((s, l) => s + Math.exp(l), 0) / qs.length;
    if (final > max) {
      max = final;
      maxAt = t + 1;
    }
  }
  return { final, max, maxAt };
}
