/**
 * The loop benchmark: how good is the adapter the loop promotes, and how fast does it get there.
 *
 * Phase 1, the tournament (the loop as it runs): simulated voters with a hidden pixel rule vote
 * through the public HTTP API on the embedded defaults; at LOOP_MIN_VOTES = the first budget the
 * loop trains one challenger per objective:space from that snapshot and runs one multi-arm
 * experiment against the base model until it decides. Recorded: votes and wall time from the
 * first vote to the first promotion, the tournament's pick, each arm's interval.
 * Phase 2, the sweep: each challenger (and, for larger budgets, an adapter trained from the base
 * on the first N votes) judged against the base on held-out prompts — same prompt and seed, the
 * voters' rule as the judge (its peer: the base model itself, judged in the same run).
 *
 *   node_modules/.bin/tsx bench/loop.ts [--budgets 500,1000,2000] [--objectives dpo:latent,cpo:ncp]
 *     [--seeds 1,2,3] [--judge 48] [--voters 8] [--steps 200] [--resume bench/results/loop.json]
 *
 * `--resume FILE[,FILE…]` keeps the seeds of earlier runs' results that this run does not repeat
 * (their settings other than the seeds must equal this run's; where two files hold a seed, the later
 * file's is kept), so seeds can be run one at a time or side by side; medians are then over every
 * seed kept. `--seeds ""` runs nothing and only merges the files given to `--resume`.
 *
 * Writes bench/results/loop.json: exactly what was run, per seed and medians over seeds, with
 * `headline.bestWinRateAtMost1000Votes`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { eq, sql } from "drizzle-orm";
import { repoRoot } from "../functions/src/config.js";
import { baseModels } from "../functions/src/db/schema.js";
import { rows as queryRows } from "../functions/src/platform/db/rows.js";
import { createSnapshot } from "../functions/src/snapshots/export.js";
import { insertRuns, planRun, sendJobs } from "../functions/src/training/runs.js";
import {
  heldoutCaptions,
  importCaptions,
  type Json,
  type Judgement,
  judgeAdapter,
  type Platform,
  startPlatform,
  startVoters,
  trainingCaptions,
  type VoterCrowd,
  waitForLoop,
} from "../tests/e2e/loopDriver.js";

const { values: args } = parseArgs({
  options: {
    budgets: { type: "string", default: "500,1000,2000" },
    objectives: { type: "string", default: "dpo:latent,dpo:ncp,cpo:latent,cpo:ncp,rpo:latent,rpo:ncp" },
    seeds: { type: "string", default: "1,2,3" },
    judge: { type: "string", default: "48" },
    voters: { type: "string", default: "8" },
    steps: { type: "string", default: "200" },
    rule: { type: "string", default: "brighter" },
    noise: { type: "string", default: "0.1" },
    out: { type: "string", default: join(repoRoot, "bench/results/loop.json") },
    resume: { type: "string" },
  },
});
const budgets = args.budgets.split(",").map(Number);
const objectives = args.objectives.split(",");
const seeds = args.seeds.trim() === "" ? [] : args.seeds.split(",").map(Number);
const judgePrompts = Number(args.judge);
const rule = args.rule as "brighter";
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0
    ? null
    : s.length % 2
      ? (s[m] as number)
      : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);

interface SweepRow {
  seed: number;
  votes: number;
  objective: string;
  adapterId: string;
  source: "tournament" | "sweep";
  judged: Judgement;
}

async function waitForRuns(p: Platform, ids: string[], timeoutMs: number): Promise<Json[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const runs = await Promise.all(ids.map((id) => p.admin(`/api/admin/training-runs/${id}`)));
    if (runs.every((r) => r.status === "succeeded" || r.status === "failed")) return runs;
    if (Date.now() > deadline) throw new Error(`training runs did not finish: ${JSON.stringify(runs)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const allRows: SweepRow[] = [];
const tournaments: Json[] = [];
/** Seeds kept from `--resume`, with the commands that ran them. */
const resumed: { seeds: number[]; commands: string[]; budgets: number[]; objectives: string[] } = {
  seeds: [],
  commands: [],
  budgets: [],
  objectives: [],
};

/** This run's command line, with empty or spaced arguments quoted so it can be run again. */
const thisCommand = ["node_modules/.bin/tsx bench/loop.ts", ...process.argv.slice(2)]
  .map((a, i) => (i > 0 && (a === "" || /\s/.test(a)) ? JSON.stringify(a) : a))
  .join(" ");
/** Which command ran each seed's rows. */
const seedCommands: Record<number, string> = Object.fromEntries(seeds.map((seed) => [seed, thisCommand]));

/** What makes rows of two runs comparable: everything but the seeds, budgets and objectives run. */
function comparable(s: Json): Json {
  return {
    firstBudget: s.budgets[0],
    judgePrompts: s.judgePrompts,
    rule: s.rule,
    noise: s.noise,
    voters: s.voters,
    steps: s.steps,
  };
}

if (args.resume) {
  const files = args.resume.split(",");
  const mine = comparable(currentSettings());
  const kept = new Set<number>(seeds);
  // the last file first: where two files hold a seed, the later one's rows are kept
  for (const file of [...files].reverse()) {
    const earlier = JSON.parse(readFileSync(file, "utf8")) as Json;
    const theirs = comparable(earlier.settings);
    if (JSON.stringify(mine) !== JSON.stringify(theirs)) {
      throw new Error(
        `--resume ${file}: its settings ${JSON.stringify(theirs)} differ from this run's ${JSON.stringify(mine)}`,
      );
    }
    const rows = earlier.rows as SweepRow[];
    const ts = earlier.tournament as Json[];
    const theirSeeds = new Set<number>([...rows.map((r) => r.seed), ...ts.map((t) => t.seed as number)]);
    const take = [...theirSeeds].filter((seed) => !kept.has(seed));
    allRows.push(...rows.filter((r) => take.includes(r.seed)));
    tournaments.push(...ts.filter((t) => take.includes(t.seed)));
    for (const seed of take) {
      kept.add(seed);
      // the command that ran this seed: the file's own, unless the file itself resumed it
      const ranHere = !(earlier.resumedFrom?.seeds ?? []).includes(seed);
      seedCommands[seed] =
        earlier.seedCommands?.[seed] ??
        (ranHere ? earlier.command : `one of: ${(earlier.resumedFrom?.commands ?? []).join(" | ")}`);
    }
    resumed.budgets = [...new Set([...resumed.budgets, ...earlier.settings.budgets])];
    resumed.objectives = [...new Set([...resumed.objectives, ...earlier.settings.objectives])];
  }
  allRows.sort((a, b) => a.seed - b.seed);
  tournaments.sort((a, b) => a.seed - b.seed);
  resumed.seeds = [...new Set([...allRows.map((r) => r.seed), ...tournaments.map((t) => t.seed)])].sort(
    (a, b) => a - b,
  );
  resumed.commands = [...new Set(resumed.seeds.map((seed) => seedCommands[seed] as string))];
  log(`resuming seeds ${resumed.seeds.join(",") || "none"} from ${files.join(", ")}`);
}

async function oneSeed(seed: number) {
  const first = budgets[0] as number;
  const p = await startPlatform({
    POOL_DEPTH: "16",
    GOLD_PAIR_RATE: "0",
    LOOP_MIN_VOTES: String(first),
    // one round: the tournament. A second round would train while the arms are judged.
    LOOP_MAX_ROUNDS: "1",
    LOOP_OBJECTIVES: objectives.join(","),
    LOOP_STEPS: args.steps,
    LOOP_LEARNING_RATE: "5e-4",
    EXPERIMENT_TRAFFIC_SHARE: "0.9",
    EXPERIMENT_MIN_VOTES: "30",
    EXPERIMENT_MAX_VOTES: "1000",
  });
  const rows = allRows;
  let voters: VoterCrowd | null = null;
  try {
    await importCaptions(p, "bench-train", trainingCaptions(600));
    const crowd = startVoters(p, { n: Number(args.voters), rule, noise: Number(args.noise), seed });
    voters = crowd;
    const t0 = Date.now();
    let trainedAt: number | null = null;
    let experimentAt: number | null = null;
    const end = await waitForLoop(
      p,
      (m) =>
        m.champion !== null ||
        (m.activeRound === null && m.activeExperiment === null && experimentAt !== null),
      3 * 3600_000,
      (m) => {
        if (trainedAt === null && m.activeRound?.status === "training") trainedAt = Date.now();
        if (experimentAt === null && m.activeExperiment) {
          experimentAt = Date.now();
          log(`seed ${seed}: experiment started after ${crowd.votes()} votes`);
        }
      },
    );
    const promotedAfterSeconds = end.champion ? (Date.now() - t0) / 1000 : null;
    const votesAtDecision = crowd.votes();
    const { experiments } = await p.admin<{ experiments: Json[] }>("/api/admin/experiments");
    const report = await p.admin(`/api/admin/experiments/${experiments[0]?.id}`);
    log(
      `seed ${seed}: experiment ${report.status} after ${votesAtDecision} votes; pick ${end.champion?.adapterId ?? "none"}`,
    );
    const tournament = {
      seed,
      votesToFirstPromotion: end.champion ? votesAtDecision : null,
      secondsToFirstPromotion: promotedAfterSeconds,
      trainingStartedAfterSeconds: trainedAt === null ? null : (trainedAt - t0) / 1000,
      experimentStartedAfterSeconds: experimentAt === null ? null : (experimentAt - t0) / 1000,
      experimentVotes: report.votes,
      decision: report.decisions[0],
      pick: report.arms.find((a: Json) => a.state === "promote")?.name ?? null,
      arms: report.arms.slice(1).map((a: Json) => ({
        name: a.name,
        state: a.state,
        n: a.statistics?.n,
        estimate: a.statistics?.estimate,
        lower: a.statistics?.lower,
        upper: a.statistics?.upper,
      })),
    };
    tournaments.push(tournament);
    flush(false);
    // The voters stop once every budget's votes are in, so they do not share the machine with
    // the judging and the sweep's training.
    const lastBudget = Math.max(...budgets);
    while (crowd.votes() < lastBudget) await new Promise((r) => setTimeout(r, 1000));
    await crowd.stop();
    const held = heldoutCaptions(judgePrompts);
    for (const a of report.arms.slice(1) as Json[]) {
      const judged = await judgeAdapter(p, a.adapterId, held, rule, 1000 * seed);
      log(`seed ${seed}: ${a.name} at ${first} votes: ${JSON.stringify(judged)}`);
      rows.push({
        seed,
        votes: first,
        objective: a.name,
        adapterId: a.adapterId,
        source: "tournament",
        judged,
      });
      flush(false);
    }
    // larger budgets: keep voting, then train each objective from the base on the first N votes
    const [base] = await p.deps.db.orm.select().from(baseModels).where(eq(baseModels.id, end.baseModelId));
    for (const budget of budgets.slice(1)) {
      // the snapshot holds the first `budget` votes, however many came in while earlier steps ran
      const [nth] = await queryRows<{ created_at: string | Date }>(
        p.deps.db.orm,
        sql`select created_at from votes order by created_at, id offset ${budget - 1} limit 1`,
      );
      const { snapshot } = await createSnapshot(p.deps, {
        cutoff: new Date(nth?.created_at ?? Date.now()),
        since: null,
        baseModelId: end.baseModelId,
      });
      const planned = objectives.map((o) => {
        const [objective, space] = o.split(":") as ["dpo", "latent"];
        return planRun(p.deps, {
          roundId: null,
          base: base as never,
          snapshot,
          parent: null,
          objective,
          space,
        });
      });
      await insertRuns(
        p.deps.db.orm,
        planned.map((x) => x.run),
      );
      await sendJobs(
        p.deps,
        planned.map((x) => x.job),
      );
      const runs = await waitForRuns(
        p,
        planned.map((x) => x.run.id as string),
        3600_000,
      );
      for (const [i, r] of runs.entries()) {
        if (r.status !== "succeeded") {
          log(`seed ${seed}: ${objectives[i]} at ${budget} failed: ${r.error}`);
          continue;
        }
        const judged = await judgeAdapter(p, r.adapterId, held, rule, 1000 * seed);
        log(`seed ${seed}: ${objectives[i]} at ${budget} votes: ${JSON.stringify(judged)}`);
        rows.push({
          seed,
          votes: budget,
          objective: objectives[i] as string,
          adapterId: r.adapterId,
          source: "sweep",
          judged,
        });
        flush(false);
      }
    }
  } finally {
    await voters?.stop();
    await p.close();
  }
}

function currentSettings(): Json {
  return {
    budgets,
    objectives,
    seeds,
    judgePrompts,
    rule,
    noise: Number(args.noise),
    voters: Number(args.voters),
    steps: Number(args.steps),
  };
}

const startedAt = new Date().toISOString();
const loadBefore = loadavg();

/**
 * Writes what has run so far. `complete` once this run finished and every seed kept has its
 * tournament and a judged row for every budget and objective.
 */
function flush(finished: boolean): void {
  const rows = allRows;
  const union = <T>(a: T[], b: T[]) => [...new Set([...a, ...b])];
  const allBudgets = union(resumed.budgets, budgets).sort((a, b) => a - b);
  const allObjectives = union(resumed.objectives, objectives);
  const cells = allBudgets.flatMap((votes) =>
    allObjectives.map((objective) => {
      const mine = rows.filter((r) => r.votes === votes && r.objective === objective);
      return {
        votes,
        objective,
        seeds: mine.length,
        medianWinRate: median(mine.map((r) => r.judged.winRate)),
        winRates: mine.map((r) => r.judged.winRate),
      };
    }),
  );
  const allSeeds = union(resumed.seeds, seeds).sort((a, b) => a - b);
  // one row per seed and cell, so a cell is complete when it holds a row of every seed
  const complete =
    finished &&
    allSeeds.every((seed) => tournaments.some((t) => t.seed === seed)) &&
    cells.every((c) => c.seeds === allSeeds.length);
  const atMost1000 = cells.filter((c) => c.votes <= 1000 && c.medianWinRate !== null);
  const best = atMost1000.sort((a, b) => (b.medianWinRate as number) - (a.medianWinRate as number))[0];
  const out = {
    benchmark: "loop",
    command: thisCommand,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, loadavgBefore: loadBefore, loadavgAfter: loadavg() },
    settings: {
      ...currentSettings(),
      budgets: allBudgets,
      objectives: allObjectives,
      seeds: allSeeds,
    },
    seedCommands,
    resumedFrom: args.resume ? { file: args.resume, ...resumed } : undefined,
    judge:
      "the voters' rule on held-out captions (never trained on, never voted on): adapter vs base, same prompt and seed; a tie is not a win",
    headline: {
      bestWinRateAtMost1000Votes: best
        ? {
            objective: best.objective,
            votes: best.votes,
            medianWinRate: best.medianWinRate,
            seeds: best.seeds,
          }
        : null,
      target: "≥ 0.70 at ≤ 1,000 votes for the best objective",
    },
    complete,
    /** The seeds whose tournament finished (the settings list what was asked for). */
    seedsDone: [...new Set(tournaments.map((t) => t.seed as number))].sort((a, b) => a - b),
    tournament: tournaments,
    medians: {
      votesToFirstPromotion: median(
        tournaments.flatMap((t) => (t.votesToFirstPromotion === null ? [] : [t.votesToFirstPromotion])),
      ),
      secondsToFirstPromotion: median(
        tournaments.flatMap((t) => (t.secondsToFirstPromotion === null ? [] : [t.secondsToFirstPromotion])),
      ),
    },
    cells,
    rows,
  };
  writeFileSync(args.out, `${JSON.stringify(out, null, 2)}\n`);
  log(`wrote ${args.out}${complete ? "" : " (partial)"}`);
}

for (const seed of seeds) await oneSeed(seed);
flush(true);
process.exit(0);
