/**
 * The mean of bounded outcomes that come in clusters (votes by voter), with its cluster-robust
 * ("sandwich") variance, kept up to date one outcome at a time in O(1).
 *
 * For voters v with n_v outcomes summing to S_v, n = Σ n_v and p̂ = Σ S_v / n, the residual of a
 * voter is r_v = S_v − n_v·p̂ and the cluster-robust variance of p̂ is
 *   V̂ = G/(G − 1) · Σ_v r_v² / n²      (G voters; the usual small-sample factor).
 * Σ r_v² = Σ S_v² − 2p̂ Σ n_v S_v + p̂² Σ n_v², so three running sums suffice.
 * Outcomes that are independent across votes give V̂ ≈ p̂(1 − p̂)/n; a voter who votes many
 * times with a taste of their own counts closer to one observation, which widens V̂.
 */

export interface ClusteredMeanSummary {
  n: number;
  voters: number;
  mean: number;
  /** Σ_v r_v², the voter residuals' sum of squares. */
  residualSumSq: number;
  /** Cluster-robust variance of the mean (Infinity with fewer than two voters). */
  varianceOfMean: number;
  /** The outcomes' own sample variance (n − 1 in the denominator; 0 below two outcomes). */
  variance: number;
  /** Σ n_v² / n: the size of the voter an average vote comes from (1 when every voter voted once). */
  clusterSize: number;
}

export class ClusteredMean {
  private readonly perVoter = new Map<string, { n: number; s: number }>();
  private n = 0;
  private sum = 0;
  private sumY2 = 0;
  private sumS2 = 0;
  private sumNS = 0;
  private sumN2 = 0;

  add(voterId: string, y: number): void {
    const c = this.perVoter.get(voterId) ?? { n: 0, s: 0 };
    // Replace the voter's old contributions to the running sums with the new ones.
    this.sumS2 += (c.s + y) ** 2 - c.s ** 2;
    this.sumNS += (c.n + 1) * (c.s + y) - c.n * c.s;
    this.sumN2 += (c.n + 1) ** 2 - c.n ** 2;
    c.n += 1;
    c.s += y;
    this.perVoter.set(voterId, c);
    this.n += 1;
    this.sum += y;
    this.sumY2 += y * y;
  }

  summary(): ClusteredMeanSummary {
    const { n } = this;
    const voters = this.perVoter.size;
    const mean = n > 0 ? this.sum / n : Number.NaN;
    const residualSumSq =
      n > 0 ? Math.max(0, this.sumS2 - 2 * mean * this.sumNS + mean * mean * this.sumN2) : 0;
    const varianceOfMean =
      voters < 2 ? Number.POSITIVE_INFINITY : ((voters / (voters - 1)) * residualSumSq) / (n * n);
    const variance = n > 1 ? Math.max(0, (this.sumY2 - n * mean * mean) / (n - 1)) : 0;
    const clusterSize = n > 0 ? this.sumN2 / n : 0;
    return { n, voters, mean, residualSumSq, varianceOfMean, variance, clusterSize };
  }
}

/** The summary of a whole table of `(voterId, y)` outcomes. */
export function clusteredMean(outcomes: Iterable<{ voterId: string; y: number }>): ClusteredMeanSummary {
  const acc = new ClusteredMean();
  for (const o of outcomes) acc.add(o.voterId, o.y);
  return acc.summary();
}
