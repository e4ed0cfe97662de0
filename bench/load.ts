/**
 * Load benchmark (not a test): votes and pair requests at rising concurrency against the Node
 * server on the machine's PostgreSQL, until latency or errors break, with the same PostgreSQL's raw
 * single-row insert rate at the same concurrency as the peer of every vote figure.
 *
 *   npx tsx bench/load.ts [--levels 1,4,10,25,50,100] [--duration 4] [--repeats 3] [--p99-limit 100]
 *
 * Per level (concurrent connections), `repeats` times in turn: raw inserts (one loop per
 * connection, at most 50), `POST /api/votes` (every request a new valid vote on a served pair)
 * and `GET /api/pairs/next` (a warm pool of ready pairs), each for `duration` seconds; a level's
 * figures are the medians of its repeats (the ratio is the median of the per-repeat ratios, so
 * each vote figure is compared with the raw rate measured next to it). The knee is the level with the most
 * votes/s whose vote p99 stays under `--p99-limit` ms with no errors and no non-2xx answers; the
 * first level past it is where it breaks; the peak is the level with the most votes/s whatever its
 * latency. Every vote is a new one: once each served pair has had a vote, the next pass gives
 * every pair to the next voter (a vote token names pair and voter). Beside the rates, each phase
 * records where the CPU went, in microseconds per request: the server process, the benchmark
 * database's PostgreSQL backends, and the load client (autocannon and the vote tokens it signs;
 * for the raw phase, the inserting client), all on the same cores. Writes bench/results/load.json.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { repoRoot } from "../functions/src/config.js";
import { issueVoteToken } from "../functions/src/domain/voteToken.js";
import {
  cpuMeter,
  machine,
  median,
  rawInserts,
  round,
  seedPairs,
  seedVoters,
  signer,
  startBenchServer,
} from "./harness.js";

const { values: args } = parseArgs({
  options: {
    levels: { type: "string", default: "1,4,10,25,50,100" },
    duration: { type: "string", default: "4" },
    repeats: { type: "string", default: "3" },
    "p99-limit": { type: "string", default: "100" },
    /** Folder for a V8 CPU profile of the server (written when it stops). */
    profile: { type: "string" },
  },
});
const LEVELS = (args.levels ?? "").split(",").map(Number);
const DURATION = Number(args.duration);
const REPEATS = Number(args.repeats);
const P99_LIMIT = Number(args["p99-limit"]);
const VOTERS = 500;
/** Served pairs for the vote phases and ready pairs for the pairs/next phases, over all levels. */
const PAIRS = 1_200 * DURATION * LEVELS.length * REPEATS;
const RAW_MAX_CONNECTIONS = 50;

interface Level {
  connections: number;
  rawInsertsPerSecond: number;
  votesPerSecond: number;
  votesOverRawInserts: number;
  voteP50Ms: number;
  voteP99Ms: number;
  voteErrors: number;
  voteNon2xx: number;
  pairsNextPerSecond: number;
  pairsNextP50Ms: number;
  pairsNextP99Ms: number;
  pairsNextErrors: number;
  pairsNextNon2xx: number;
  /** CPU microseconds per request (per insert for the raw phase), by process: where the time goes. */
  rawInsertCpuUsPostgres: number;
  rawInsertCpuUsClient: number;
  voteCpuUsServer: number;
  voteCpuUsPostgres: number;
  voteCpuUsClient: number;
  pairsNextCpuUsServer: number;
  pairsNextCpuUsPostgres: number;
  pairsNextCpuUsClient: number;
}

async function main() {
  const nodeArgs = args.profile ? ["--cpu-prof", `--cpu-prof-dir=${args.profile}`] : [];
  const bench = await startBenchServer({ nodeArgs });
  const { url, client: c } = bench;
  const benchDb = new URL(bench.dbUrl).pathname.slice(1);
  const levels: Level[] = [];
  try {
    process.stderr.write(`seeding ${PAIRS} served and ${PAIRS} ready pairs…\n`);
    const voters = await seedVoters(c, VOTERS);
    await seedPairs(c, "loadv", PAIRS, true, VOTERS);
    await seedPairs(c, "loadn", PAIRS, false, VOTERS);
    await c.query("vacuum analyze");
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    let nextVote = 0;
    let nextVoter = 0;

    const runLevel = async (connections: number): Promise<Level> => {
      process.stderr.write(`${connections} connections: raw inserts… `);
      const rawRun = await rawInserts(bench.dbUrl, Math.min(connections, RAW_MAX_CONNECTIONS), DURATION);
      const raw = rawRun.perSecond;
      process.stderr.write("votes… ");
      const voteMeter = cpuMeter(bench.pid, benchDb);
      const votes = await autocannon({
        url,
        connections,
        duration: DURATION,
        requests: [
          {
            method: "POST",
            path: "/api/votes",
            setupRequest: (req) => {
              // past the last pair, each pass hands every pair to the next voter: a new vote, never a repeat
              const pass = Math.floor(nextVote / PAIRS);
              const g = nextVote++ % PAIRS;
              const voter = voters[(g + pass) % VOTERS] as (typeof voters)[number];
              const token = issueVoteToken(signer, { pairId: `loadv-p-${g}`, voterId: voter.id, expiresAt });
              return {
                ...req,
                headers: {
                  "content-type": "application/json",
                  cookie: voter.cookie,
                  "x-csrf-token": voter.csrf,
                },
                body: JSON.stringify({ token, choice: g % 3 === 0 ? "left" : "right", decisionMs: 1500 }),
              };
            },
          },
        ],
      });
      const voteCpu = voteMeter(votes.requests.total);
      process.stderr.write("pairs/next…\n");
      const pairsMeter = cpuMeter(bench.pid, benchDb);
      const pairs = await autocannon({
        url,
        connections,
        duration: DURATION,
        requests: [
          {
            method: "GET",
            path: "/api/pairs/next?promptSet=loadn",
            setupRequest: (req) => ({
              ...req,
              headers: { cookie: (voters[nextVoter++ % VOTERS] as (typeof voters)[number]).cookie },
            }),
          },
        ],
      });
      const pairsCpu = pairsMeter(pairs.requests.total);
      return {
        connections,
        rawInsertsPerSecond: round(raw),
        votesPerSecond: round(votes.requests.average),
        votesOverRawInserts: round(votes.requests.average / raw, 3),
        voteP50Ms: votes.latency.p50,
        voteP99Ms: votes.latency.p99,
        voteErrors: votes.errors + votes.timeouts,
        voteNon2xx: votes.non2xx,
        pairsNextPerSecond: round(pairs.requests.average),
        pairsNextP50Ms: pairs.latency.p50,
        pairsNextP99Ms: pairs.latency.p99,
        pairsNextErrors: pairs.errors + pairs.timeouts,
        pairsNextNon2xx: pairs.non2xx,
        rawInsertCpuUsPostgres: rawRun.cpu.postgres,
        rawInsertCpuUsClient: rawRun.cpu.client,
        voteCpuUsServer: voteCpu.server,
        voteCpuUsPostgres: voteCpu.postgres,
        voteCpuUsClient: voteCpu.client,
        pairsNextCpuUsServer: pairsCpu.server,
        pairsNextCpuUsPostgres: pairsCpu.postgres,
        pairsNextCpuUsClient: pairsCpu.client,
      };
    };
    const repeats: Level[][] = LEVELS.map(() => []);
    for (let r = 0; r < REPEATS; r++) {
      for (const [i, connections] of LEVELS.entries()) {
        const level = await runLevel(connections);
        repeats[i]?.push(level);
        process.stderr.write(`${JSON.stringify(level)}\n`);
      }
    }
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    for (const [i, connections] of LEVELS.entries()) {
      const runs = repeats[i] as Level[];
      const med = (k: keyof Level) => median(runs.map((l) => l[k]));
      levels.push({
        connections,
        rawInsertsPerSecond: round(med("rawInsertsPerSecond")),
        votesPerSecond: round(med("votesPerSecond")),
        votesOverRawInserts: round(med("votesOverRawInserts"), 3),
        voteP50Ms: med("voteP50Ms"),
        voteP99Ms: med("voteP99Ms"),
        voteErrors: sum(runs.map((l) => l.voteErrors)),
        voteNon2xx: sum(runs.map((l) => l.voteNon2xx)),
        pairsNextPerSecond: round(med("pairsNextPerSecond")),
        pairsNextP50Ms: med("pairsNextP50Ms"),
        pairsNextP99Ms: med("pairsNextP99Ms"),
        pairsNextErrors: sum(runs.map((l) => l.pairsNextErrors)),
        pairsNextNon2xx: sum(runs.map((l) => l.pairsNextNon2xx)),
        rawInsertCpuUsPostgres: med("rawInsertCpuUsPostgres"),
        rawInsertCpuUsClient: med("rawInsertCpuUsClient"),
        voteCpuUsServer: med("voteCpuUsServer"),
        voteCpuUsPostgres: med("voteCpuUsPostgres"),
        voteCpuUsClient: med("voteCpuUsClient"),
        pairsNextCpuUsServer: med("pairsNextCpuUsServer"),
        pairsNextCpuUsPostgres: med("pairsNextCpuUsPostgres"),
        pairsNextCpuUsClient: med("pairsNextCpuUsClient"),
      });
    }
    if (nextVote > PAIRS * VOTERS)
      process.stderr.write("warning: ran out of pairs and voters; some votes were repeats\n");

    const stored = Number(
      (
        await c.query(
          "select count(*) from votes v join pairs p on p.id = v.pair_id where p.prompt_set_id = 'loadv'",
        )
      ).rows[0].count,
    );
    const healthy = (l: Level) => l.voteErrors === 0 && l.voteNon2xx === 0 && l.voteP99Ms <= P99_LIMIT;
    const fine = levels.filter(healthy);
    const knee = fine.reduce<Level | null>(
      (best, l) => (!best || l.votesPerSecond > best.votesPerSecond ? l : best),
      null,
    );
    const breaks = levels.find((l) => !healthy(l)) ?? null;
    const peak = levels.reduce<Level | null>(
      (best, l) => (!best || l.votesPerSecond > best.votesPerSecond ? l : best),
      null,
    );
    const at10 = levels.find((l) => l.connections === 10) ?? null;
    const result = {
      benchmark: "load",
      command: `npx tsx bench/load.ts --levels ${LEVELS.join(",")} --duration ${DURATION} --repeats ${REPEATS} --p99-limit ${P99_LIMIT}`,
      date: new Date().toISOString(),
      machine: machine(bench.pgVersion),
      settings: {
        levels: LEVELS,
        durationSeconds: DURATION,
        p99LimitMs: P99_LIMIT,
        voters: VOTERS,
        rawMaxConnections: RAW_MAX_CONNECTIONS,
      },
      knee: knee && {
        connections: knee.connections,
        votesPerSecond: knee.votesPerSecond,
        voteP99Ms: knee.voteP99Ms,
        votesOverRawInserts: knee.votesOverRawInserts,
        pairsNextP99Ms: knee.pairsNextP99Ms,
      },
      peak: peak && {
        connections: peak.connections,
        votesPerSecond: peak.votesPerSecond,
        voteP99Ms: peak.voteP99Ms,
        votesOverRawInserts: peak.votesOverRawInserts,
      },
      breaksAt: breaks && {
        connections: breaks.connections,
        votesPerSecond: breaks.votesPerSecond,
        voteP99Ms: breaks.voteP99Ms,
        voteErrors: breaks.voteErrors,
        voteNon2xx: breaks.voteNon2xx,
      },
      targets: at10 && {
        votesAtLeastHalfOfRawInsertsAt10Connections: {
          target: 0.5,
          measured: at10.votesOverRawInserts,
          met: at10.votesOverRawInserts >= 0.5,
        },
        pairsNextP99Under25MsAt10Connections: {
          target: 25,
          measured: at10.pairsNextP99Ms,
          met: at10.pairsNextP99Ms < 25,
        },
      },
      votesSent: nextVote,
      votesStored: stored,
      levels,
      repeats,
    };
    const out = join(repoRoot, "bench/results/load.json");
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(
      `${JSON.stringify({ knee: result.knee, peak: result.peak, breaksAt: result.breaksAt, targets: result.targets }, null, 2)}\nwrote ${out}\n`,
    );
  } catch (err) {
    process.stderr.write(`benchmark failed: ${String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await bench.close();
  }
}

await main();
