/**
 * The leaderboard: Bradley–Terry ratings with bootstrap intervals that resample voters, a rank
 * that only separates models whose intervals do not overlap, the both-bad rate and online Elo.
 *
 * - Bootstrap: each round draws as many voters as there are, with replacement, and refits on all
 *   their votes. FastChat resamples single votes; a voter's votes are not independent of each
 *   other, so resampling voters (clusters) keeps the interval honest when some vote a lot.
 *   Interval = the 2.5 % and 97.5 % quantiles (linear interpolation, as pandas) over the rounds in
 *   which the model had votes. Seeded: the same votes and seed give the same leaderboard.
 * - Rank (FastChat): 1 + the number of models whose lower bound is above this one's upper bound.
 */
import { type Battle, bradleyTerry, type PairCount, pairCounts } from "./bradleyTerry.js";
import { onlineElo } from "./onlineElo.js";
import { seededRandom } from "./random.js";

export interface LeaderboardVote extends Battle {
  voterId: string;
  /** The vote said both images were bad (it counts as a tie in the ratings). */
  bothBad?: boolean;
}

export interface LeaderboardRow {
  model: string;
  rank: number;
  rating: number;
  lower: number;
  upper: number;
  /** Votes in which the model was shown (a same-model pair counts once). */
  votes: number;
  wins: number;
  losses: number;
  ties: number;
  bothBad: number;
  bothBadRate: number;
  /** Online Elo in vote order, for display only. */
  onlineElo: number;
}

export interface Leaderboard {
  rows: LeaderboardRow[];
  /** Left-position effect of the full fit. */
  position: { leftWinProbability: number; eloPoints: number };
  votes: number;
  voters: number;
  rounds: number;
  seed: number;
}

/** The q-quantile with linear interpolation between order statistics (pandas' default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const a = sorted[lo] as number;
  const b = sorted[Math.min(lo + 1, sorted.length - 1)] as number;
  return a + (h - lo) * (b - a);
}

/** Ranks from intervals: 1 + the number of others whose lower bound beats this upper bound. */
export function rankByIntervals(rows: readonly { lower: number; upper: number }[]): number[] {
  return rows.map((r, i) => 1 + rows.filter((o, j) => j !== i && o.lower > r.upper).length);
}

export function bootstrapLeaderboard(
  votes: readonly LeaderboardVote[],
  opts: { rounds?: number; seed?: number; models?: readonly string[] } = {},
): Leaderboard {
  const rounds = opts.rounds ?? 200;
  const seed = opts.seed ?? 1;
  const models = opts.models
    ? [...opts.models]
    : [...new Set(votes.flatMap((v) => [v.left, v.right]))].sort();
  const full = bradleyTerry(pairCounts(votes), { models });

  // Each voter's votes as pair counts, so a round only adds up counts.
  const byVoter = new Map<string, LeaderboardVote[]>();
  for (const v of votes) byVoter.set(v.voterId, [...(byVoter.get(v.voterId) ?? []), v]);
  const voterCounts = [...byVoter.values()].map((vs) => pairCounts(vs));
  const random = seededRandom(seed);
  const samples = models.map(() => [] as number[]);
  for (let r = 0; r < rounds && voterCounts.length > 0; r++) {
    const merged = new Map<string, PairCount>();
    const present = new Set<string>();
    for (let d = 0; d < voterCounts.length; d++) {
      const pick = voterCounts[Math.floor(random() * voterCounts.length)] as PairCount[];
      for (const c of pick) {
        const key = `${c.left}\u0000${c.right}`;
        const m = merged.get(key) ?? { left: c.left, right: c.right, n: 0, leftWins: 0 };
        m.n += c.n;
        m.leftWins += c.leftWins;
        merged.set(key, m);
        present.add(c.left);
        present.add(c.right);
      }
    }
    const fit = bradleyTerry([...merged.values()], {
      models,
      start: { theta: full.theta, gamma: full.position.logOdds },
    });
    models.forEach((m, i) => {
      if (present.has(m)) samples[i]?.push(fit.ratings[m] as number);
    });
  }

  const elo = onlineElo(votes);
  const tally = new Map(models.map((m) => [m, { votes: 0, wins: 0, losses: 0, ties: 0, bothBad: 0 }]));
  for (const v of votes) {
    const sides =
      v.left === v.right
        ? [[v.left, 0.5]]
        : [
            [v.left, v.outcome],
            [v.right, 1 - v.outcome],
          ];
    for (const [m, y] of sides as [string, number][]) {
      const t = tally.get(m);
      if (!t) continue;
      t.votes++;
      if (v.bothBad) t.bothBad++;
      else if (y === 1) t.wins++;
      else if (y === 0) t.losses++;
      else t.ties++;
    }
  }
  const unranked = models.map((model, i) => {
    const sorted = [...(samples[i] as number[])].sort((a, b) => a - b);
    const t = tally.get(model) as {
      votes: number;
      wins: number;
      losses: number;
      ties: number;
      bothBad: number;
    };
    return {
      model,
      rating: full.ratings[model] as number,
      lower: sorted.length ? quantile(sorted, 0.025) : Number.NEGATIVE_INFINITY,
      upper: sorted.length ? quantile(sorted, 0.975) : Number.POSITIVE_INFINITY,
      ...t,
      bothBadRate: t.votes ? t.bothBad / t.votes : 0,
      onlineElo: elo[model] ?? 1000,
    };
  });
  const ranks = rankByIntervals(unranked);
  const rows = unranked
    .map((r, i) => ({ ...r, rank: ranks[i] as number }))
    .sort((a, b) => a.rank - b.rank || b.rating - a.rating);
  return {
    rows,
    position: { leftWinProbability: full.position.leftWinProbability, eloPoints: full.position.eloPoints },
    votes: votes.length,
    voters: byVoter.size,
    rounds,
    seed,
  };
}
