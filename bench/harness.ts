/**
 * What the HTTP benchmarks share: the Node server on loopback against a throwaway database on the
 * machine's PostgreSQL, seeded in SQL, and the peer they are compared with: the same server's raw
 * single-row insert rate into a table shaped like `votes`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { repoRoot } from "../functions/src/config.js";
import { csrfToken, voterCookieValue } from "../functions/src/domain/voteToken.js";
import { Signer } from "../functions/src/platform/signing.js";
import { throwawayDatabase } from "../tests/helpers/postgres.js";

export const SECRET = "voting-benchmark-signing-secret-0123456789";
export const signer = new Signer(SECRET);

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
export const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Inserts per second of `connections` concurrent loops of single-row autocommitted inserts. */
export async function rawInsertRate(url: string, connections: number, seconds: number): Promise<number> {
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
  await Promise.all(clients.map((c) => c.end()));
  return rate;
}

/** Seeds a prompt set and `count` ready pairs (served to the bench voters when `servedToVoters`), in SQL. */
export async function seedPairs(
  c: pg.Client,
  tag: string,
  count: number,
  servedToVoters: boolean,
  voters: number,
): Promise<void> {
  await c.query(
    `insert into prompt_sets (id, name, source) values ($1, $1, 'bench') on conflict do nothing`,
    [tag],
  );
  await c.query(
    `insert into prompts (id, prompt_set_id, text, category, source)
     select $1 || '-pr-' || g, $1, 'bench prompt ' || g, 'Bench', 'bench' from generate_series(0, 499) g
     on conflict do nothing`,
    [tag],
  );
  await c.query(
    `insert into generations (id, prompt_id, base_model_id, seed, sampler, steps, guidance, width, height, status, blob_key)
     select $1 || '-g-' || g || '-' || s, $1 || '-pr-' || (g % 500), 'bench-model', (g * 2 + case when s = 'a' then 0 else 1 end)::text, 'ddim', 20, 7.5,
            512, 512, 'succeeded', 'bench/' || $1 || '/' || g || '-' || s || '.png'
     from generate_series(0, $2::int - 1) g, (values ('a'), ('b')) as side(s)`,
    [tag, count],
  );
  await c.query(
    `insert into pairs (id, prompt_id, generation_a_id, generation_b_id, prompt_set_id,
                        served_to_voter_id, served_at, left_is, created_at)
     select $1 || '-p-' || g, $1 || '-pr-' || (g % 500), $1 || '-g-' || g || '-a', $1 || '-g-' || g || '-b', $1,
            case when $3 then 'bench-voter-' || (g % ${voters}) end, case when $3 then now() end,
            case when $3 then (case when g % 2 = 0 then 'a' else 'b' end) end,
            now() - interval '1 day' + g * interval '1 millisecond'
     from generate_series(0, $2::int - 1) g`,
    [tag, count, servedToVoters],
  );
}

export interface BenchVoter {
  id: string;
  cookie: string;
  csrf: string;
}

/** Inserts the base model and `count` voters; returns their cookies and CSRF tokens. */
export async function seedVoters(c: pg.Client, count: number): Promise<BenchVoter[]> {
  await c.query(
    `insert into base_models (id, name, family, sha256, width, height) values ('bench-model', 'bench', 'sd15', '0', 512, 512)
     on conflict do nothing`,
  );
  await c.query(
    `insert into voters (id) select 'bench-voter-' || g from generate_series(0, ${count - 1}) g on conflict do nothing`,
  );
  return Array.from({ length: count }, (_, v) => {
    const id = `bench-voter-${v}`;
    return { id, cookie: `prefloop_voter=${voterCookieValue(signer, id)}`, csrf: csrfToken(signer, id) };
  });
}

async function waitForServer(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("server did not become ready");
}

export interface BenchServer {
  url: string;
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
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), "--import", "tsx", "functions/src/entries/server.ts"],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        PREFLOOP_ENV: "test",
        PORT: String(port),
        STATE_DIR: state,
        DATABASE_URL: db.url,
        SIGNING_SECRET: SECRET,
        LOG_LEVEL: "warn",
        POOL_DEPTH: "20",
        LOOP_ENABLED: "false",
        RATE_LIMIT_VOTER_PER_MINUTE: "100000000",
        RATE_LIMIT_IP_PER_MINUTE: "100000000",
        ...opts.env,
      },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  try {
    await waitForServer(url, server); // the server has applied the migrations
  } catch (err) {
    server.kill("SIGKILL");
    await db.drop();
    throw err;
  }
  const client = new pg.Client({ connectionString: db.url });
  client.on("error", () => {}); // the drop at the end terminates it
  await client.connect();
  const pgVersion = (await client.query("show server_version")).rows[0].server_version as string;
  return {
    url,
    dbUrl: db.url,
    client,
    pgVersion,
    close: async () => {
      await client.end().catch(() => undefined);
      server.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 500));
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
