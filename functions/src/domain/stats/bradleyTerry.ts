/**
 * Bradley–Terry maximum likelihood with a left-position term, as FastChat's `elo_analysis.py`
 * fits it (logistic regression over unique (pair, outcome) counts; a tie or both-bad is half a
 * win and half a loss), on the Elo scale (400 points = 10× the odds), plus the intercept
 * FastChat leaves out: our images are shown left and right, and voters favour a side.
 *
 *   P(left image wins) = σ(θ_left − θ_right + γ),   rating = 1000 + 400/ln 10 · θ (mean 1000)
 *
 * Fitted by Newton's method on the log-likelihood with a small ridge (λ/2)·Σθ² (λ = 0.01 by
 * default: a model that never lost keeps a finite rating; it also fixes the otherwise free
 * offset so that Σθ = 0). Two images of one model (a data pair) inform γ only.
 */
import { Matrix, solve } from "ml-matrix";

export const ELO_SCALE = 400 / Math.LN10;
export const ELO_CENTER = 1000;

/** One vote as the ranking sees it: the models shown left and right, and the left image's outcome. */
export interface Battle {
  left: string;
  right: string;
  /** 1: the left image won, 0: the right one, ½: tie or both bad. */
  outcome: number;
}

/** Votes on one ordered (left, right) model pair: how many, and the left side's wins (ties ½). */
export interface PairCount {
  left: string;
  right: string;
  n: number;
  leftWins: number;
}

export interface BradleyTerryFit {
  models: string[];
  /** Log-odds strengths, summing to 0. */
  theta: number[];
  /** Elo-scale ratings (mean 1000). */
  ratings: Record<string, number>;
  /** Left-position log-odds γ, and the left win probability between equals σ(γ). */
  position: { logOdds: number; leftWinProbability: number; eloPoints: number };
  iterations: number;
  logLikelihood: number;
}

/** Sums battles into unique (left, right) counts. */
export function pairCounts(battles: Iterable<Battle>): PairCount[] {
  const by = new Map<string, PairCount>();
  for (const b of battles) {
    const key = `${b.left}\u0000${b.right}`;
    const c = by.get(key) ?? { left: b.left, right: b.right, n: 0, leftWins: 0 };
    c.n += 1;
    c.leftWins += b.outcome;
    by.set(key, c);
  }
  return [...by.values()];
}

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
const log1pExp = (z: number) => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

/**
 * The fit over `counts`. `models` fixes the order and lets models without votes appear (their θ
 * is 0); `start` warm-starts θ and γ (the bootstrap refits from the full fit).
 */
export function bradleyTerry(
  counts: readonly PairCount[],
  opts: {
    models?: readonly string[];
    ridge?: number;
    start?: { theta: readonly number[]; gamma: number };
  } = {},
): BradleyTerryFit {
  const models = opts.models
    ? [...opts.models]
    : [...new Set(counts.flatMap((c) => [c.left, c.right]))].sort();
  const index = new Map(models.map((m, i) => [m, i]));
  const k = models.length;
  const ridge = opts.ridge ?? 0.01;
  const x = new Float64Array(k + 1);
  if (opts.start) {
    opts.start.theta.forEach((t, i) => {
      x[i] = t;
    });
    x[k] = opts.start.gamma;
  }
  const rows = counts
    .filter((c) => c.n > 0)
    .map((c) => {
      const i = index.get(c.left);
      const j = index.get(c.right);
      if (i === undefined || j === undefined)
        throw new RangeError(`model ${i === undefined ? c.left : c.right} is not in the model list`);
      return { i, j, n: c.n, w: c.leftWins };
    });
  const objective = (p: Float64Array) => {
    let f = 0;
    for (const r of rows) {
      const z = r.i === r.j ? (p[k] as number) : (p[r.i] as number) - (p[r.j] as number) + (p[k] as number);
      f += r.w * log1pExp(-z) + (r.n - r.w) * log1pExp(z);
    }
    for (let m = 0; m < k; m++) f += 0.5 * ridge * (p[m] as number) ** 2;
    return f;
  };
  let f = objective(x);
  let iterations = 0;
  for (; iterations < 100; iterations++) {
    const g = new Float64Array(k + 1);
    const h = Matrix.zeros(k + 1, k + 1);
    for (const r of rows) {
      const same = r.i === r.j;
      const z = same ? (x[k] as number) : (x[r.i] as number) - (x[r.j] as number) + (x[k] as number);
      const p = sigmoid(z);
      const resid = r.n * p - r.w; // gradient of the negative log-likelihood in z
      const w = r.n * p * (1 - p);
      (g[k] as number) += resid;
      h.set(k, k, h.get(k, k) + w);
      if (!same) {
        (g[r.i] as number) += resid;
        (g[r.j] as number) -= resid;
        h.set(r.i, r.i, h.get(r.i, r.i) + w);
        h.set(r.j, r.j, h.get(r.j, r.j) + w);
        h.set(r.i, r.j, h.get(r.i, r.j) - w);
        h.set(r.j, r.i, h.get(r.j, r.i) - w);
        h.set(r.i, k, h.get(r.i, k) + w);
        h.set(k, r.i, h.get(k, r.i) + w);
        h.set(r.j, k, h.get(r.j, k) - w);
        h.set(k, r.j, h.get(k, r.j) - w);
      }
    }
    for (let m = 0; m < k; m++) {
      (g[m] as number) += ridge * (x[m] as number);
      h.set(m, m, h.get(m, m) + ridge);
    }
    // γ has no ridge; with no votes at all keep it at 0.
    if (h.get(k, k) === 0) h.set(k, k, 1);
    const step = solve(h, Matrix.columnVector(Array.from(g))).to1DArray();
    let t = 1;
    let next = x;
    let fNext = f;
    for (let halvings = 0; halvings < 30; halvings++, t /= 2) {
      next = x.map((v, m) => v - t * (step[m] as number));
      fNext = objective(next);
      if (fNext <= f + 1e-12) break;
    }
    const moved = Math.max(...step.map((s) => Math.abs(s * t)));
    x.set(next);
    f = fNext;
    if (moved < 1e-10) break;
  }
  const theta = Array.from(x.subarray(0, k));
  const gamma = x[k] as number;
  return {
    models,
    theta,
    ratings: Object.fromEntries(models.map((m, i) => [m, ELO_CENTER + ELO_SCALE * (theta[i] as number)])),
    position: { logOdds: gamma, leftWinProbability: sigmoid(gamma), eloPoints: ELO_SCALE * gamma },
    iterations: iterations + 1,
    logLikelihood: -f + 0.5 * ridge * theta.reduce((s, t) => s + t * t, 0),
  };
}
