/**
 * Allocation benchmark (not a test): what the server-side traffic allocation costs on
 * `GET /api/pairs/next`. Two Node servers on loopback, each on a throwaway database of the
 * machine's PostgreSQL, driven by autocannon in the same run:
 *   - the peer: one traffic class (GOLD_PAIR_RATE=0, no experiment running): one claim a request;
 *   - allocated: the defaults (5 % gold, experiments 50 % of ordinary traffic) with one running
 *     experiment, so each request draws a class and claims from its pool (data, experiment, gold).
 * Every pool holds ready pairs, so no request waits for generation.
 *
 *   npx tsx bench/allocation.ts [--runs 3] [--duration 5] [--connections 10] [--pairs 20000]
 *
 * Writes bench/results/allocation.json (medians over runs, every run, and the ratios).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import type pg from "pg";
import { repoRoot } from "../functions/src/config.js";
import { machine, median, round, seedPairs, seedVoters, startBenchServer } from "./harness.js";

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "10" },
    pairs: { type: "string", default: "20000" },
  },
});
const RUNS = Number(args.runs);
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const PAIRS = Number(args.pairs);
const VOTERS = 200;

/** Pairs of another kind, moved into the data pairs' prompt set. */
async function seedKind(c: pg.Client, tag: string, kind: "experiment" | "gold", count: number) {
  await seedPairs(c, `${tag}-${kind}`, count, false, VOTERS);
  await c.query(
    `update pairs set kind = $1, prompt_set_id = $2, experiment_id = $3, is_gold = $4,
       gold_answer = case when $4 then 'a' end,
       arm_a = case when $1 = 'experiment' then 'control' end, arm_b = case when $1 = 'experiment' then 'challenger' end
     where prompt_set_id = $5`,
    [kind, tag, kind === "experiment" ? "bench-exp" : null, kind === "gold", `${tag}-${kind}`],
  );
}

async function measure(mode: "peer" | "allocated", run: number) {
  const server = await startBenchServer({
    env:
      mode === "peer" ? { GOLD_PAIR_RATE: "0" } : { GOLD_PAIR_RATE: "0.05", EXPERIMENT_TRAFFIC_SHARE: "0.5" },
  });
  try {
    const c = server.client;
    const tag = `alloc${run}`;
    await seedPairs(c, tag, PAIRS, false, VOTERS);
    if (mode === "allocated") {
      await c.query(
        `insert into experiments (id, name, base_model_id, arms, allocation, prompt_set_id, status)
         values ('bench-exp', 'bench', 'bench-model',
           '[{"name":"control","adapterId":null},{"name":"challenger","adapterId":null}]', '[0.5,0.5]', $1, 'running')`,
        [tag],
      );
      await seedKind(c, tag, "experiment", PAIRS);
      await seedKind(c, tag, "gold", Math.ceil(PAIRS / 5));
    }
    const voters = await seedVoters(c, VOTERS);
    let v = 0;
    const requests = [
      {
        method: "GET",
        path: `/api/pairs/next?promptSet=${tag}`,
        setupRequest: (req: { headers?: Record<string, string> }) => ({
          ...req,
          headers: { cookie: (voters[v++ % VOTERS] as (typeof voters)[number]).cookie },
        }),
      },
    ];
    const many = await autocannon({
      url: server.url,
      connections: CONNECTIONS,
      duration: DURATION,
      requests,
    });
    const one = await autocannon({ url: server.url, connections: 1, duration: DURATION, requests });
    const kinds = Object.fromEntries(
      (
        await c.query(
          "select kind, count(*)::int as n from pairs where prompt_set_id = $1 and served_at is not null group by kind",
          [tag],
        )
      ).rows.map((r: { kind: string; n: number }) => [r.kind, r.n]),
    );
    return {
      result: {
        perSecond: many.requests.average,
        p50Ms: many.latency.p50,
        p99Ms: many.latency.p99,
        non2xx: many.non2xx,
        oneConnP50Ms: one.latency.p50,
        oneConnP99Ms: one.latency.p99,
        oneConnPerSecond: one.requests.average,
      },
      served: kinds,
      pgVersion: server.pgVersion,
    };
  } finally {
    await server.close();
  }
}

const runs: { peer: Record<string, number>; allocated: Record<string, number>; served: unknown }[] = [];
let pgVersion = "";
for (let run = 0; run < RUNS; run++) {
  process.stderr.write(`run ${run + 1}/${RUNS}: peer (one class)…\n`);
  const peer = await measure("peer", run);
  process.stderr.write(`run ${run + 1}/${RUNS}: allocated (data, experiment, gold)…\n`);
  const allocated = await measure("allocated", run);
  pgVersion = allocated.pgVersion;
  runs.push({ peer: peer.result, allocated: allocated.result, served: allocated.served });
  process.stderr.write(`${JSON.stringify(runs.at(-1))}\n`);
}
const med = (side: "peer" | "allocated") =>
  Object.fromEntries(
    Object.keys(runs[0]?.[side] ?? {}).map((k) => [
      k,
      round(median(runs.map((r) => r[side][k] as number)), 2),
    ]),
  );
const peer = med("peer");
const allocated = med("allocated");
const ratio = (k: string) => round((allocated[k] as number) / (peer[k] as number), 3);
const result = {
  benchmark: "allocation",
  command: `npx tsx bench/allocation.ts --runs ${RUNS} --duration ${DURATION} --connections ${CONNECTIONS} --pairs ${PAIRS}`,
  date: new Date().toISOString(),
  machine: machine(pgVersion),
  settings: { runs: RUNS, durationSeconds: DURATION, connections: CONNECTIONS, pairs: PAIRS, voters: VOTERS },
  median: { peer, allocated },
  ratios: {
    allocatedOverPeerPerSecond: ratio("perSecond"),
    allocatedOverPeerP50: ratio("p50Ms"),
    allocatedOverPeerOneConnP50: ratio("oneConnP50Ms"),
  },
  runs,
};
writeFileSync(join(repoRoot, "bench/results/allocation.json"), `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(
  `${JSON.stringify({ median: result.median, ratios: result.ratios, loadAverage: result.machine.loadAverageAtEnd })}\n`,
);
