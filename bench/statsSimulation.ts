/**
 * Simulated experiments for the statistics benchmark (bench/stats.ts) and its small version in
 * the test suite. Voters differ: each has their own p (normal around the population's p, sd τ),
 * their own left bias, and their own number of votes (most a few, some heavy voters up to 50).
 * Votes from all voters arrive interleaved; the interval is looked at after every vote.
 */
import { ClusteredMean } from "../functions/src/domain/stats/clusteredMean.js";
import {
  confidenceInterval,
  mixtureHalfWidth,
  mixtureRho,
} from "../functions/src/domain/stats/confidenceSequence.js";
import { normalDraw, type Random } from "../functions/src/domain/stats/random.js";

export interface Population {
  /** Population P(challenger ≻ champion), ties counted ½. */
  p: number;
  /** Standard deviation of voters' own p around it. */
  voterSpread: number;
  /** Voters' own left bias: uniform in ±this. */
  leftBias: number;
  tieRate: number;
  bothBadRate: number;
  /** Share of heavy voters (30–50 votes); the rest vote a geometric number of times (mean 4), at most 50. */
  heavyShare: number;
  /**
   * `interleaved`: all voters' votes in a random order; `bursts`: voters arrive one after another
   * and cast all their votes in a row (one person's session at a time: the hard case, where the
   * first hundred votes may come from three people).
   */
  arrival: "interleaved" | "bursts";
}

export const DEFAULT_POPULATION: Population = {
  p: 0.5,
  voterSpread: 0.1,
  leftBias: 0.1,
  tieRate: 0.05,
  bothBadRate: 0.03,
  heavyShare: 0.05,
  arrival: "interleaved",
};

export interface SimVote {
  voterId: string;
  y: number;
  challengerOnLeft: boolean;
}

/** One experiment's votes, interleaved across voters, at least `votes` long. */
export function simulateVotes(random: Random, pop: Population, votes: number): SimVote[] {
  const pending: SimVote[] = [];
  let v = 0;
  while (pending.length < votes) {
    const id = `v${v++}`;
    const own = Math.min(0.98, Math.max(0.02, pop.p + pop.voterSpread * normalDraw(random)));
    const bias = (2 * random() - 1) * pop.leftBias;
    const n =
      random() < pop.heavyShare
        ? 30 + Math.floor(random() * 21)
        : Math.min(50, 1 + Math.floor(Math.log(1 - random()) / Math.log(0.75)));
    for (let i = 0; i < n; i++) {
      const onLeft = random() < 0.5;
      const u = random();
      const pWin = Math.min(1, Math.max(0, own + (onLeft ? bias : -bias)));
      const y = u < pop.tieRate + pop.bothBadRate ? 0.5 : random() < pWin ? 1 : 0;
      pending.push({ voterId: id, y, challengerOnLeft: onLeft });
    }
  }
  if (pop.arrival === "bursts") return pending.slice(0, votes);
  // Interleave: a random order of all votes (Fisher–Yates).
  for (let i = pending.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pending[i], pending[j]] = [pending[j] as SimVote, pending[i] as SimVote];
  }
  return pending.slice(0, votes);
}

export interface MethodSettings {
  alpha: number;
  tuningVotes: number;
  priorVoters: number;
  growthBookS: number;
  /** Votes before GrowthBook's interval is read (its σ̂ is 0 after a few equal votes). */
  growthBookMinVotes: number;
}

/** Votes at which each method's interval first left ½ out (null: never), and on which side. */
export interface FirstDecision {
  ours: { n: number; above: boolean } | null;
  growthBook: { n: number; above: boolean } | null;
  growthBookClustered: { n: number; above: boolean } | null;
  /** The fixed-horizon z-test (cluster-naive) at `fixedN` votes: whether it rejected, and the side. */
  fixed: { rejected: boolean; above: boolean };
}

/**
 * Runs our confidence sequence and GrowthBook's sequential interval (σ̂ the plain standard
 * deviation of the votes, as gbstats computes it; and, for reference, with our cluster-robust σ̂)
 * over one stream of votes, looking after every vote.
 */
export function firstDecisions(votes: readonly SimVote[], s: MethodSettings, fixedN: number): FirstDecision {
  const acc = new ClusteredMean();
  const gbRho = mixtureRho(s.alpha, s.growthBookS);
  const out: FirstDecision = {
    ours: null,
    growthBook: null,
    growthBookClustered: null,
    fixed: { rejected: false, above: false },
  };
  let sum = 0;
  let sumSq = 0;
  const z = 1.959963984540054; // two-sided 5 % (only used when alpha = 0.05)
  for (let i = 0; i < votes.length; i++) {
    const v = votes[i] as SimVote;
    acc.add(v.voterId, v.y);
    sum += v.y;
    sumSq += v.y * v.y;
    const n = i + 1;
    const summary = acc.summary();
    if (!out.ours) {
      const ci = confidenceInterval(summary, s.alpha, {
        tuningVotes: s.tuningVotes,
        priorVoters: s.priorVoters,
      });
      if (ci.lower > 0.5 || ci.upper < 0.5) out.ours = { n, above: ci.lower > 0.5 };
    }
    const mean = sum / n;
    if (!out.growthBook && n >= Math.max(2, s.growthBookMinVotes)) {
      const sd = Math.sqrt(Math.max(0, (sumSq - n * mean * mean) / (n - 1)));
      const h = mixtureHalfWidth(n, sd, s.alpha, gbRho);
      if (mean - h > 0.5 || mean + h < 0.5) out.growthBook = { n, above: mean > 0.5 };
    }
    if (!out.growthBookClustered && summary.voters >= 2 && n >= s.growthBookMinVotes) {
      const h = mixtureHalfWidth(n, Math.sqrt(n * summary.varianceOfMean), s.alpha, gbRho);
      if (mean - h > 0.5 || mean + h < 0.5) out.growthBookClustered = { n, above: mean > 0.5 };
    }
    if (n === fixedN) {
      const sd = Math.sqrt(Math.max(0, (sumSq - n * mean * mean) / (n - 1)));
      out.fixed = { rejected: Math.abs(mean - 0.5) > (z * sd) / Math.sqrt(n), above: mean > 0.5 };
    }
    if (out.ours && out.growthBook && out.growthBookClustered && n >= fixedN) break;
  }
  return out;
}

/** Votes a fixed-horizon two-sided z-test at 5 % needs for 80 % power at p (independent votes, σ² = p(1−p)). */
export function fixedHorizonVotes(p: number, tieShare: number): number {
  const zA = 1.959963984540054;
  const zB = 0.8416212335729143;
  // An outcome that is ½ with probability tieShare and otherwise a win (probability w) or a loss.
  const w = (p - tieShare / 2) / (1 - tieShare);
  const variance = tieShare / 4 + (1 - tieShare) * w - p * p;
  return Math.ceil(((zA + zB) ** 2 * variance) / (p - 0.5) ** 2);
}

/** A simulated rater: which tests flag them, and after how many of their votes. */
export interface RaterRun {
  flagged: boolean;
  codes: string[];
  /** Votes (all, gold included) at the first check that flagged them (null: never). */
  votesToFlag: number | null;
}

export type RaterKind = "always_left" | "random_clicker" | "honest";

/**
 * One voter of a kind casting `votes` votes, a share `goldShare` of them on gold pairs, checked
 * with `assess` after every `checkEvery` votes (the scheduler re-checks voters with new votes).
 * Non-gold pairs compare two models the population prefers one of at `populationAgreement`
 * (counts from 1,000 other votes); an honest voter agrees with the truth at `agreement`.
 */
export function simulateRater(
  random: Random,
  kind: RaterKind,
  opts: {
    votes: number;
    goldShare: number;
    agreement: number;
    populationAgreement: number;
    checkEvery: number;
    assess: (votes: RaterVoteLike[]) => { flags: { code: string }[] };
  },
): RaterRun {
  const votes: RaterVoteLike[] = [];
  const popWins = Math.round(1000 * opts.populationAgreement);
  const bias = (2 * random() - 1) * 0.1;
  for (let i = 0; i < opts.votes; i++) {
    const gold = random() < opts.goldShare;
    const betterLeft = random() < 0.5;
    let choice: "left" | "right";
    if (kind === "always_left") choice = "left";
    else if (kind === "random_clicker") choice = random() < 0.5 ? "left" : "right";
    else {
      const right = random() < opts.agreement;
      const pLeft = Math.min(1, Math.max(0, (right === betterLeft ? 1 : 0) + bias));
      choice = random() < pLeft ? "left" : "right";
    }
    const decisionMs =
      kind === "honest"
        ? Math.round(Math.exp(Math.log(2500) + 0.6 * normalDraw(random)))
        : 300 + Math.round(random() * 3000);
    const pickedBetter = (choice === "left") === betterLeft;
    votes.push(
      gold
        ? { choice, decisionMs, goldCleanSide: betterLeft ? "left" : "right" }
        : {
            choice,
            decisionMs,
            outlier: {
              vote: pickedBetter ? 1 : 0,
              populationWins: popWins,
              populationLosses: 1000 - popWins,
            },
          },
    );
    if ((i + 1) % opts.checkEvery === 0 || i === opts.votes - 1) {
      const r = opts.assess(votes);
      if (r.flags.length > 0) return { flagged: true, codes: r.flags.map((f) => f.code), votesToFlag: i + 1 };
    }
  }
  return { flagged: false, codes: [], votesToFlag: null };
}

export interface RaterVoteLike {
  choice: "left" | "right" | "tie" | "both_bad";
  decisionMs: number | null;
  goldCleanSide?: "left" | "right";
  outlier?: { vote: 0 | 0.5 | 1; populationWins: number; populationLosses: number };
}

/**
 * Leaderboard votes: models with log-odds strengths, voters with a taste of their own (each
 * model's strength moved by a normal draw of sd `taste` per voter), a left advantage `gamma`,
 * 5 % ties, the same numbers of votes per voter as the A/B simulation, each vote on a random
 * pair of two different models.
 */
export function simulateLeaderboardVotes(
  random: Random,
  opts: { strengths: readonly number[]; taste: number; gamma: number; votes: number; heavyShare: number },
): { voterId: string; left: string; right: string; outcome: number }[] {
  const k = opts.strengths.length;
  const out: { voterId: string; left: string; right: string; outcome: number }[] = [];
  for (let v = 0; out.length < opts.votes; v++) {
    const own = opts.strengths.map((s) => s + opts.taste * normalDraw(random));
    const n =
      random() < opts.heavyShare
        ? 30 + Math.floor(random() * 21)
        : Math.min(50, 1 + Math.floor(Math.log(1 - random()) / Math.log(0.75)));
    for (let i = 0; i < n && out.length < opts.votes; i++) {
      const a = Math.floor(random() * k);
      const b = (a + 1 + Math.floor(random() * (k - 1))) % k;
      const z = (own[a] as number) - (own[b] as number) + opts.gamma;
      const outcome = random() < 0.05 ? 0.5 : random() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
      out.push({ voterId: `v${v}`, left: `m${a}`, right: `m${b}`, outcome });
    }
  }
  return out;
}
