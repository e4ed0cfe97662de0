/**
 * Voting benchmark (not a test): the Node server on loopback against a throwaway database on the
 * machine's PostgreSQL, driven by autocannon.
 *
 *   npx tsx bench/voting.ts [--runs 3] [--duration 6] [--connections 10] [--profile DIR]
 *
 * Per run it measures, in this order:
 *   1. the raw single-row insert rate of the same PostgreSQL: a client loop of single-row inserts
 *      into a table shaped like `votes` (one connection; and `connections` concurrent loops);
 *   2. POST /api/votes at fixed concurrency (every request a new, valid vote on a served pair);
 *   3. GET /api/pairs/next latency with a warm pool (ready pairs) at the same concurrency and at 1.
 * Writes bench/results/voting.json (medians over runs, plus every run).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { repoRoot } from "../functions/src/config.js";
import { issueVoteToken } from "../functions/src/domain/voteToken.js";
import {
  machine,
  median,
  rawInsertRate,
  round,
  seedPairs,
  seedVoters,
  signer,
  startBenchServer,
} from "./harness.js";

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    duration: { type: "string", default: "6" },
    connections: { type: "string", default: "10" },
    /** Folder for a V8 CPU profile of the server (written when it stops). */
    profile: { type: "string" },
  },
});
const RUNS = Number(args.runs);
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const VOTERS = 200;
/** Served pairs prepared per run for the vote phase: more than the server can take in DURATION. */
const VOTE_PAIRS = 12_000 * DURATION;
const NEXT_PAIRS = 6_000 * DURATION;

async function main() {
  const nodeArgs = args.profile ? ["--cpu-prof", `--cpu-prof-dir=${args.profile}`] : [];
  const bench = await startBenchServer({ nodeArgs });
  const { url, client: c, pgVersion } = bench;
  const runs: Record<string, number>[] = [];
  try {
    const voters = await seedVoters(c, VOTERS);

    for (let run = 0; run < RUNS; run++) {
      const tag = `r${run}`;
      process.stderr.write(`run ${run + 1}/${RUNS}: seeding…\n`);
      await seedPairs(c, `${tag}v`, VOTE_PAIRS, true, VOTERS);
      await seedPairs(c, `${tag}n`, NEXT_PAIRS, false, VOTERS);
      await c.query("vacuum analyze");

      process.stderr.write(`run ${run + 1}/${RUNS}: raw inserts…\n`);
      const raw1 = await rawInsertRate(bench.dbUrl, 1, DURATION);
      const rawC = await rawInsertRate(bench.dbUrl, CONNECTIONS, DURATION);

      process.stderr.write(`run ${run + 1}/${RUNS}: votes…\n`);
      const expiresAt = Math.floor(Date.now() / 1000) + 3600;
      let next = 0;
      const votes = await autocannon({
        url,
        connections: CONNECTIONS,
        duration: DURATION,
        requests: [
          {
            method: "POST",
            path: "/api/votes",
            setupRequest: (req) => {
              const g = next++ % VOTE_PAIRS;
              const voter = voters[g % VOTERS] as (typeof voters)[number];
              const token = issueVoteToken(signer, {
                pairId: `${tag}v-p-${g}`,
                voterId: voter.id,
                expiresAt,
              });
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
      const stored = Number(
        (
          await c.query(
            "select count(*) from votes v join pairs p on p.id = v.pair_id where p.prompt_set_id = $1",
            [`${tag}v`],
          )
        ).rows[0].count,
      );
      if (next > VOTE_PAIRS)
        process.stderr.write("warning: ran out of prepared pairs; some votes were repeats\n");

      process.stderr.write(`run ${run + 1}/${RUNS}: pairs/next…\n`);
      let v = 0;
      const nextRequests = [
        {
          method: "GET",
          path: `/api/pairs/next?promptSet=${tag}n`,
          setupRequest: (req: { headers?: Record<string, string> }) => ({
            ...req,
            headers: { cookie: (voters[v++ % VOTERS] as (typeof voters)[number]).cookie },
          }),
        },
      ];
      const pairsC = await autocannon({
        url,
        connections: CONNECTIONS,
        duration: DURATION,
        requests: nextRequests,
      });
      const pairs1 = await autocannon({ url, connections: 1, duration: DURATION, requests: nextRequests });

      const r = {
        rawInsertsPerSecond1Connection: raw1,
        rawInsertsPerSecondNConnections: rawC,
        votesPerSecond: votes.requests.average,
        votesStored: stored,
        votesNon2xx: votes.non2xx,
        votesErrors: votes.errors,
        voteLatencyP50Ms: votes.latency.p50,
        voteLatencyP99Ms: votes.latency.p99,
        pairsNextPerSecond: pairsC.requests.average,
        pairsNextP50Ms: pairsC.latency.p50,
        pairsNextP99Ms: pairsC.latency.p99,
        pairsNextNon2xx: pairsC.non2xx,
        pairsNext1ConnP50Ms: pairs1.latency.p50,
        pairsNext1ConnP99Ms: pairs1.latency.p99,
        pairsNext1ConnPerSecond: pairs1.requests.average,
      };
      runs.push(r);
      process.stderr.write(
        `${JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, x]) => [k, round(x)])))}\n`,
      );
    }
    const med = (k: string) => round(median(runs.map((r) => r[k] as number)), 2);
    const m = Object.fromEntries(Object.keys(runs[0] ?? {}).map((k) => [k, med(k)]));
    const votesRatio1 = round((m.votesPerSecond as number) / (m.rawInsertsPerSecond1Connection as number), 3);
    const votesRatioN = round(
      (m.votesPerSecond as number) / (m.rawInsertsPerSecondNConnections as number),
      3,
    );
    const result = {
      benchmark: "voting",
      command: `npx tsx bench/voting.ts --runs ${RUNS} --duration ${DURATION} --connections ${CONNECTIONS}`,
      date: new Date().toISOString(),
      machine: machine(pgVersion),
      settings: { runs: RUNS, durationSeconds: DURATION, connections: CONNECTIONS, voters: VOTERS },
      median: m,
      ratios: {
        votesPerSecondOverRawInserts1Connection: votesRatio1,
        votesPerSecondOverRawInsertsNConnections: votesRatioN,
      },
      targets: {
        votesAtLeastHalfOfRawInsertRate: { target: 0.5, measured: votesRatio1, met: votesRatio1 >= 0.5 },
        pairsNextP99Under25Ms: {
          target: 25,
          measured: m.pairsNextP99Ms,
          met: (m.pairsNextP99Ms as number) < 25,
          measuredAt1Connection: m.pairsNext1ConnP99Ms,
        },
      },
      runs,
    };
    const out = join(repoRoot, "bench/results/voting.json");
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(
      `${JSON.stringify({ median: m, ratios: result.ratios, targets: result.targets }, null, 2)}\nwrote ${out}\n`,
    );
  } catch (err) {
    process.stderr.write(`benchmark failed: ${String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await bench.close();
  }
}

await main();
