/**
 * Statistics benchmark (not a test): simulated experiments, SRM and raters.
 *
 *   npx tsx bench/stats.ts [--aa 2000] [--power 500] [--srm 1000] [--raters 2000] [--seed 1]
 *
 * 1. A/A: `--aa` experiments with population p = ½ whose voters differ (own p, sd τ = 0.1; own
 *    left bias; 1–50 votes each, heavy voters included), a look after every vote up to 10,000
 *    votes: the share ever declared significant (the interval leaves ½ out) at α = 0.05, for our
 *    confidence sequence, GrowthBook's sequential interval (gbstats' formula, S = 5,000, σ̂ the
 *    plain standard deviation, read from 100 votes on), the same with a cluster-robust σ̂, and a
 *    fixed-horizon z-test; then again with voters who differ more (τ = 0.15 and 0.25), and with
 *    voters who cast all their votes in a row (τ = 0.1 and 0.25).
 * 2. Power: `--power` experiments at p = 0.55, 0.60, 0.70 (same voters): median votes to a
 *    decision (never decided by 10,000 = 10,000) for each method, and the ratio ours/GrowthBook.
 * 3. SRM: a 52/48 left/right placement (votes to the alarm, share fired within 20,000) and
 *    `--srm` A/A runs of 20,000 votes (share ever fired), a look after every vote.
 * 4. Raters: an always-left voter, a random clicker (25 % gold pairs), and `--raters` honest noisy
 *    voters (80 % agreement with the truth) checked after every vote.
 * 5. Leaderboard: `--leaderboard` simulated boards (5 models, voters with their own taste, 3,000
 *    votes): coverage of the population's ratings by 95 % intervals that resample voters (ours)
 *    and votes (FastChat), 200 rounds each.
 * Writes bench/results/stats.json.
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { repoRoot } from "../functions/src/config.js";
import { bradleyTerry, pairCounts } from "../functions/src/domain/stats/bradleyTerry.js";
import { DEFAULT_TUNING_VOTES, PRIOR_VOTERS } from "../functions/src/domain/stats/confidenceSequence.js";
import { bootstrapLeaderboard } from "../functions/src/domain/stats/leaderboard.js";
import { seededRandom } from "../functions/src/domain/stats/random.js";
import { assessRater } from "../functions/src/domain/stats/raterQuality.js";
import { srmLogBayesFactor } from "../functions/src/domain/stats/sampleRatioMismatch.js";
import { median, round } from "./harness.js";
import {
  DEFAULT_POPULATION,
  type FirstDecision,
  firstDecisions,
  fixedHorizonVotes,
  type RaterKind,
  simulateLeaderboardVotes,
  simulateRater,
  simulateVotes,
} from "./statsSimulation.js";

const { values: args } = parseArgs({
  options: {
    aa: { type: "string", default: "2000" },
    power: { type: "string", default: "500" },
    srm: { type: "string", default: "1000" },
    raters: { type: "string", default: "2000" },
    leaderboard: { type: "string", default: "100" },
    seed: { type: "string", default: "1" },
    tuning: { type: "string", default: String(DEFAULT_TUNING_VOTES) },
    prior: { type: "string", default: String(PRIOR_VOTERS) },
    spread: { type: "string", default: String(DEFAULT_POPULATION.voterSpread) },
    "gb-min": { type: "string", default: "100" },
  },
});
const ALPHA = 0.05;
const MAX_VOTES = 10_000;
const settings = {
  alpha: ALPHA,
  tuningVotes: Number(args.tuning),
  priorVoters: Number(args.prior),
  growthBookS: 5000,
  growthBookMinVotes: Number(args["gb-min"]),
};
const population = { ...DEFAULT_POPULATION, voterSpread: Number(args.spread) };
const random = seededRandom(Number(args.seed));
const started = performance.now();
const log = (msg: string) => process.stderr.write(`${round((performance.now() - started) / 1000)}s ${msg}\n`);

type Method = "ours" | "growthBook" | "growthBookClustered";
const METHODS: Method[] = ["ours", "growthBook", "growthBookClustered"];

function runMany(p: number, runs: number, fixedN: number): FirstDecision[] {
  const out: FirstDecision[] = [];
  for (let r = 0; r < runs; r++)
    out.push(firstDecisions(simulateVotes(random, { ...population, p }, MAX_VOTES), settings, fixedN));
  return out;
}

// 1. A/A
const aaRuns = Number(args.aa);
const aa = runMany(0.5, aaRuns, fixedHorizonVotes(0.55, population.tieRate + population.bothBadRate));
const aaRate = Object.fromEntries(
  METHODS.map((m) => [m, aa.filter((d) => d[m] !== null).length / aaRuns]),
) as Record<Method, number>;
const aaFixed = aa.filter((d) => d.fixed.rejected).length / aaRuns;
log(`A/A ${JSON.stringify(aaRate)} fixed ${aaFixed}`);

// A/A with voters who differ more (smaller runs): how each method's error grows with clustering.
const scenarios = [
  { voterSpread: 0.15, arrival: "interleaved" },
  { voterSpread: 0.25, arrival: "interleaved" },
  { voterSpread: 0.1, arrival: "bursts" },
  { voterSpread: 0.25, arrival: "bursts" },
] as const;
const aaByClustering = scenarios.map(({ voterSpread, arrival }) => {
  const runs = aaRuns;
  const ds: FirstDecision[] = [];
  for (let r = 0; r < runs; r++)
    ds.push(
      firstDecisions(
        simulateVotes(random, { ...population, voterSpread, arrival }, MAX_VOTES),
        settings,
        MAX_VOTES + 1,
      ),
    );
  const rates = Object.fromEntries(METHODS.map((m) => [m, ds.filter((d) => d[m] !== null).length / runs]));
  log(`A/A spread ${voterSpread} ${arrival} ${JSON.stringify(rates)}`);
  return { voterSpread, arrival, runs, everSignificantShare: rates };
});

// 2. Power
const powerRuns = Number(args.power);
const power = [0.55, 0.6, 0.7].map((p) => {
  const fixedN = fixedHorizonVotes(p, population.tieRate + population.bothBadRate);
  const runs = runMany(p, powerRuns, fixedN);
  const medianVotes = Object.fromEntries(
    METHODS.map((m) => [m, median(runs.map((d) => (d[m]?.above ? (d[m]?.n as number) : MAX_VOTES)))]),
  ) as Record<Method, number>;
  const decidedShare = Object.fromEntries(
    METHODS.map((m) => [m, runs.filter((d) => d[m]?.above).length / powerRuns]),
  ) as Record<Method, number>;
  const row = {
    p,
    medianVotes,
    decidedShare,
    oursOverGrowthBook: round(medianVotes.ours / medianVotes.growthBook, 3),
    oursOverGrowthBookClustered: round(medianVotes.ours / medianVotes.growthBookClustered, 3),
    fixedHorizon: {
      votes: fixedN,
      power: runs.filter((d) => d.fixed.rejected && d.fixed.above).length / powerRuns,
    },
  };
  log(`power ${JSON.stringify(row)}`);
  return row;
});

// 3. SRM
function srmRun(share: number, votes: number): number | null {
  let a = 0;
  for (let n = 1; n <= votes; n++) {
    if (random() < share) a++;
    if (srmLogBayesFactor([a, n - a], [0.5, 0.5]) > Math.log(1 / ALPHA)) return n;
  }
  return null;
}
const srmRuns = Number(args.srm);
const srmAa = Array.from({ length: srmRuns }, () => srmRun(0.5, 20_000));
const srmSkew = Array.from({ length: Math.max(50, Math.round(srmRuns / 5)) }, () => srmRun(0.52, 20_000));
const srm = {
  aaFiredShare: srmAa.filter((n) => n !== null).length / srmRuns,
  skew52: {
    runs: srmSkew.length,
    firedWithin20000Share: srmSkew.filter((n) => n !== null).length / srmSkew.length,
    medianVotesToAlarm: median(srmSkew.map((n) => n ?? 20_000)),
  },
};
log(`srm ${JSON.stringify(srm)}`);

// 4. Raters
const assess = (votes: Parameters<typeof assessRater>[0]) =>
  assessRater(votes, { alpha: ALPHA, minDecisionMs: 400 });
const raterOpts = { goldShare: 0.25, agreement: 0.8, populationAgreement: 0.8, checkEvery: 1, assess };
function raters(
  kind: RaterKind,
  runs: number,
  votes: number,
  populationAgreement = raterOpts.populationAgreement,
) {
  const rs = Array.from({ length: runs }, () =>
    simulateRater(random, kind, { ...raterOpts, votes, populationAgreement }),
  );
  const codes: Record<string, number> = {};
  for (const r of rs) for (const c of r.codes) codes[c] = (codes[c] ?? 0) + 1;
  return {
    runs,
    votesEach: votes,
    flaggedShare: rs.filter((r) => r.flagged).length / runs,
    medianVotesToFlag: median(rs.map((r) => r.votesToFlag ?? votes)),
    maxVotesToFlag: Math.max(...rs.map((r) => r.votesToFlag ?? votes)),
    codes,
  };
}
const raterResults = {
  alwaysLeft: raters("always_left", 200, 30),
  randomClicker: raters("random_clicker", 200, 400),
  // Pairs the population is split on: the outlier test cannot tell, only gold pairs can.
  randomClickerGoldOnly: raters("random_clicker", 200, 400, 0.5),
  honest: raters("honest", Number(args.raters), 400),
};
log(`raters ${JSON.stringify(raterResults)}`);

// 5. Leaderboard intervals: resampling voters (ours) against resampling votes (FastChat's
// bootstrap, the same fit with every vote its own "voter"): coverage of the population's ratings.
const lbRuns = Number(args.leaderboard);
const lbOpts = { strengths: [0, 0.15, 0.3, 0.45, 0.6], taste: 0.5, gamma: 0.1, heavyShare: 0.05 };
const models = lbOpts.strengths.map((_, i) => `m${i}`);
const truth = bradleyTerry(pairCounts(simulateLeaderboardVotes(random, { ...lbOpts, votes: 400_000 })), {
  models,
}).ratings;
const coverage = { voters: { covered: 0, width: 0 }, votes: { covered: 0, width: 0 } };
const lbStarted = performance.now();
for (let r = 0; r < lbRuns; r++) {
  const votes = simulateLeaderboardVotes(random, { ...lbOpts, votes: 3000 });
  const byVoter = bootstrapLeaderboard(votes, { rounds: 200, seed: r + 1, models });
  const byVote = bootstrapLeaderboard(
    votes.map((v, i) => ({ ...v, voterId: `vote${i}` })),
    { rounds: 200, seed: r + 1, models },
  );
  for (const [board, acc] of [
    [byVoter, coverage.voters],
    [byVote, coverage.votes],
  ] as const)
    for (const row of board.rows) {
      const t = truth[row.model] as number;
      if (row.lower <= t && t <= row.upper) acc.covered++;
      acc.width += row.upper - row.lower;
    }
}
const cells = lbRuns * models.length;
const leaderboard = {
  runs: lbRuns,
  votesEach: 3000,
  rounds: 200,
  ...lbOpts,
  populationRatings: Object.fromEntries(models.map((m) => [m, round(truth[m] as number, 1)])),
  coverage95: {
    resampleVoters: coverage.voters.covered / cells,
    resampleVotes: coverage.votes.covered / cells,
  },
  meanIntervalWidth: {
    resampleVoters: round(coverage.voters.width / cells, 1),
    resampleVotes: round(coverage.votes.width / cells, 1),
  },
  secondsPerBoard: round((performance.now() - lbStarted) / 1000 / (2 * Math.max(1, lbRuns)), 3),
};
log(`leaderboard ${JSON.stringify(leaderboard)}`);

const result = {
  benchmark: "stats",
  command: `npx tsx bench/stats.ts --aa ${args.aa} --power ${args.power} --srm ${args.srm} --raters ${args.raters} --seed ${args.seed}`,
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    loadAverageAtEnd: loadavg().map((x) => round(x, 2)),
    node: process.version,
  },
  seconds: round((performance.now() - started) / 1000),
  settings: { maxVotes: MAX_VOTES, ...settings, population },
  headline: {
    /** The worst A/A rate of our method over the interleaved scenarios (τ = 0.10, 0.15, 0.25). */
    aaFalsePositiveRate: Math.max(
      aaRate.ours,
      ...aaByClustering
        .filter((a) => a.arrival === "interleaved")
        .map((a) => a.everSignificantShare.ours as number),
    ),
    /** The same when every voter casts all their votes in a row (the stress case). */
    aaFalsePositiveRateBursts: Math.max(
      ...aaByClustering
        .filter((a) => a.arrival === "bursts")
        .map((a) => a.everSignificantShare.ours as number),
    ),
    worstVotesRatioVsGrowthBook: Math.max(...power.map((r) => r.oursOverGrowthBook)),
    growthBookAaFalsePositiveRate: Math.max(
      aaRate.growthBook,
      ...aaByClustering.map((a) => a.everSignificantShare.growthBook as number),
    ),
  },
  aa: { runs: aaRuns, everSignificantShare: aaRate, fixedHorizonRejectShare: aaFixed },
  aaByClustering,
  power,
  srm,
  raters: raterResults,
  leaderboard,
};
writeFileSync(join(repoRoot, "bench", "results", "stats.json"), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result.headline));
