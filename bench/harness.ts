/**
 * What the HTTP benchmarks share: the Node server on loopback against a throwaway database on the
 * machine's PostgreSQL, seeded in SQL, and the peer they are compared with: the same server's raw
 * single-row insert rate into a table shaped like `votes`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { Signer } from "../functions/src/platform/signing.js";
import { throwawayDatabase } from "../tests/helpers/postgres.js";
import { startServerProcess } from "../tests/helpers/serverProcess.js";
import { seedVoters as seedVotersWith } from "../tests/helpers/sqlSeed.js";

export { type BenchVoter, seedPairs } from "../tests/helpers/sqlSeed.js";

export const SECRET = "voting-benchmark-signing-secret-0123456789";
export const signer = new Signer(SECRET);

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
export const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Inserts `count` voters; returns their cookies and CSRF tokens (signed with the benchmark's key). */
export const seedVoters = (c: pg.Client, count: number) => seedVotersWith(c, count, signer);

/** CPU seconds (user + system) a process has used so far; 0 once it is gone (Linux `/proc`). */
export function processCpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

/**
 * CPU seconds used so far by each PostgreSQL backend of one database (its process title names
 * the database), by process id. Other databases' work on the same server is left out.
 */
export function postgresBackendCpu(database: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const title = readFileSync(`/proc/${pid}/cmdline`, "latin1");
      if (title.startsWith("postgres") && title.includes(` ${database} `)) {
        out.set(Number(pid), processCpuSeconds(Number(pid)));
      }
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Where the CPU of one phase went, in microseconds per request: the server, PostgreSQL, the load client. */
export interface CpuPerRequest {
  server: number;
  postgres: number;
  client: number;
}

/**
 * Starts measuring a phase's CPU; the returned function ends it and divides by the requests made.
 * PostgreSQL is the backends of `database` alive at the end (call it before clients disconnect).
 */
export function cpuMeter(serverPid: number | null, database: string): (requests: number) => CpuPerRequest {
  const server0 = serverPid === null ? 0 : processCpuSeconds(serverPid);
  const pg0 = postgresBackendCpu(database);
  const client0 = process.cpuUsage();
  return (requests) => {
    const client = process.cpuUsage(client0);
    let pg = 0;
    for (const [pid, seconds] of postgresBackendCpu(database)) pg += seconds - (pg0.get(pid) ?? 0);
    const per = (seconds: number) => Math.round((seconds * 1e6) / Math.max(1, requests));
    return {
      server: serverPid === null ? 0 : per(processCpuSeconds(serverPid) - server0),
      postgres: per(pg),
      client: per((client.user + client.system) / 1e6),
    };
  };
}

/** Inserts per second of `connections` concurrent loops of single-row autocommitted inserts. */
export async function rawInsertRate(url: string, connections: number, seconds: number): Promise<number> {
  return (await rawInserts(url, connections, seconds)).perSecond;
}

/** `rawInsertRate`, with the CPU per insert of PostgreSQL and of the inserting client. */
export async function rawInserts(
  url: string,
  connections: number,
  seconds: number,
): Promise<{ perSecond: number; cpu: CpuPerRequest }> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query(`drop table if exists raw_inserts;
    create table raw_inserts (id text primary key, pair_id text not null, voter_id text not null,
      choice text not null, decision_ms integer, idempotency_key text not null unique,
      qc_flags jsonb not null default '[]', created_at timestamptz not null default now());
    create unique index raw_inserts_pair_voter on raw_inserts (pair_id, voter_id);
    create index raw_inserts_voter on raw_inserts (voter_id);
    create index raw_inserts_created on raw_inserts (created_at);`);
  await setup.end();
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  let n = 0;
  const meter = cpuMeter(null, new URL(url).pathname.slice(1));
  const until = Date.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    clients.map(async (c, k) => {
      for (let i = 0; Date.now() < until; i++) {
        const id = `${k}-${i}`;
        await c.query(
          "insert into raw_inserts (id, pair_id, voter_id, choice, decision_ms, idempotency_key, qc_flags) values ($1, $2, $3, $4, $5, $6, $7::jsonb)",
          [id, `p${id}`, `v${k}`, "left", 1234, `p${id}:v${k}`, "[]"],
        );
        n++;
      }
    }),
  );
  const rate = n / ((performance.now() - started) / 1000);
  const cpu = meter(n); // before the backends exit with their clients
  await Promise.all(clients.map((c) => c.end()));
  return { perSecond: rate, cpu };
}

export interface BenchServer {
  url: string;
  /** The server's process id (for its CPU time). */
  pid: number | null;
  dbUrl: string;
  /** A client of the benchmark's database (seeding, counting). */
  client: pg.Client;
  pgVersion: string;
  close(): Promise<void>;
}

/** Starts `functions/src/entries/server.ts` on a throwaway database, rate limits out of the way. */
export async function startBenchServer(
  opts: { nodeArgs?: string[]; env?: Record<string, string> } = {},
): Promise<BenchServer> {
  const db = await throwawayDatabase();
  const state = mkdtempSync(join(tmpdir(), "prefloop-bench-"));
  const port = 18_000 + Math.floor(Math.random() * 2000);
  const server = startServerProcess({
    port,
    databaseUrl: db.url,
    stateDir: state,
    signingSecret: SECRET,
    nodeArgs: opts.nodeArgs,
    env: {
      POOL_DEPTH: "20",
      RATE_LIMIT_VOTER_PER_MINUTE: "100000000",
      RATE_LIMIT_IP_PER_MINUTE: "100000000",
      ...opts.env,
    },
  });
  try {
    await server.ready(); // the server has applied the migrations
  } catch (err) {
    await server.kill();
    await db.drop();
    throw err;
  }
  const client = new pg.Client({ connectionString: db.url });
  client.on("error", () => {}); // the drop at the end terminates it
  await client.connect();
  const pgVersion = (await client.query("show server_version")).rows[0].server_version as string;
  return {
    url: server.url,
    pid: server.child.pid ?? null,
    dbUrl: db.url,
    client,
    pgVersion,
    close: async () => {
      await client.end().catch(() => undefined);
      await server.stop();
      await db.drop();
      rmSync(state, { recursive: true, force: true });
    },
  };
}

export function machine(pgVersion: string) {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    loadAverageAtEnd: loadavg().map((x) => round(x, 2)),
    node: process.version,
    postgres: pgVersion,
  };
}
