/**
 * Snapshot export memory and speed at 1k, 10k and 100k votes: does memory stay flat?
 *
 *   npx tsx bench/export.ts [--sizes 1000,10000,100000] [--runs 2]
 *
 * Seeds one throwaway database on the machine's PostgreSQL (votes on data pairs of 64x64 PNGs
 * rendered with sharp, 64 distinct images spread over the generations, in the filesystem blob
 * store), then exports the first N votes (a cut-off at the N-th vote) in a fresh child process
 * per size and run, so each peak RSS is that export's own. The peer in the same run is an idle
 * child that builds the same dependencies and exports nothing (the floor every size shares).
 * Headline: peak RSS at the largest size over the peak at the smallest (target <= 1.1); with an
 * even number of runs the "median" is the upper middle value (two runs: the larger).
 * `--gc-every-ms N` forces a full collection every N ms in the children (a diagnosis: retained
 * memory apart from garbage not collected yet), recorded as `export.diagnosis` beside the
 * measurement, which it leaves alone; each child also reports its peak heap used and array buffers.
 * Results: bench/results/export.json (`export`, `headline`), the table in BENCHMARKS.md.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import sharp from "sharp";
import { loadConfig } from "../functions/src/config.js";
import { buildDeps } from "../functions/src/deps.js";
import { jsonLogger } from "../functions/src/platform/log.js";
import { createSnapshot } from "../functions/src/snapshots/export.js";
import { throwawayDatabase } from "../tests/helpers/postgres.js";

const repo = fileURLToPath(new URL("../", import.meta.url));
const IMAGES = 64;

function configFor(databaseUrl: string, blobDir: string, stateDir: string) {
  return loadConfig({
    PREFLOOP_ENV: "test",
    DATABASE_URL: databaseUrl,
    BLOB_DIR: blobDir,
    STATE_DIR: stateDir,
    LOG_LEVEL: "error",
  });
}

async function png(i: number): Promise<Buffer> {
  const hue = (i * 47) % 360;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">
    <rect width="64" height="64" fill="hsl(${hue},60%,55%)"/>
    <circle cx="${20 + (i % 24)}" cy="32" r="${10 + (i % 9)}" fill="hsl(${(hue + 180) % 360},70%,45%)"/>
    <rect x="${i % 40}" y="40" width="16" height="12" fill="hsl(${(hue + 90) % 360},50%,35%)"/>
  </svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** `n` usable votes, one a second from a fixed start: the cut-off of the first k is start + k - 1 s. */
async function seed(databaseUrl: string, blobDir: string, stateDir: string, n: number): Promise<Date> {
  const deps = await buildDeps(configFor(databaseUrl, blobDir, stateDir), { log: jsonLogger("error") });
  try {
    let imageBytes = 0;
    for (let i = 0; i < IMAGES; i++) {
      const bytes = await png(i);
      imageBytes += bytes.length;
      await deps.blobs.put(`bench-images/${i}.png`, bytes, { contentType: "image/png" });
    }
    const start = new Date("2026-01-01T00:00:00Z");
    const o = deps.db.orm;
    await o.execute(
      sql`insert into base_models (id, name, family, sha256, width, height) values ('bench', 'bench', 'sd', 'x', 64, 64)`,
    );
    await o.execute(sql`insert into prompt_sets (id, name, source) values ('ps', 'bench', 'bench')`);
    await o.execute(sql`insert into prompts (id, prompt_set_id, text, source)
      select 'p' || g, 'ps', 'a shape number ' || g, 'bench' from generate_series(1, ${Math.max(1, Math.floor(n / 4))}) g`);
    await o.execute(sql`insert into voters (id) select 'v' || g from generate_series(1, 500) g`);
    await o.execute(sql`insert into generations (id, prompt_id, base_model_id, seed, sampler, steps, guidance, width, height, status, blob_key)
      select 'g' || g, 'p' || (1 + (g / 2) % ${Math.max(1, Math.floor(n / 4))}), 'bench', g::text, 'ddim', 20, 5, 64, 64, 'succeeded',
             'bench-images/' || (g % ${IMAGES}) || '.png'
      from generate_series(0, ${2 * n - 1}) g`);
    await o.execute(sql`insert into pairs (id, prompt_id, generation_a_id, generation_b_id, prompt_set_id, left_is, served_at, kind)
      select 'pair' || g, 'p' || (1 + g % ${Math.max(1, Math.floor(n / 4))}), 'g' || (2 * g), 'g' || (2 * g + 1), 'ps',
             case when g % 2 = 0 then 'a' else 'b' end, now(), 'data'
      from generate_series(0, ${n - 1}) g`);
    await o.execute(sql`insert into votes (id, pair_id, voter_id, choice, decision_ms, idempotency_key, created_at)
      select 'vote' || g, 'pair' || g, 'v' || (1 + g % 500),
             (array['left', 'right', 'left', 'right', 'tie', 'both_bad'])[1 + g % 6], 1500, 'k' || g,
             ${start.toISOString()}::timestamptz + g * interval '1 second'
      from generate_series(0, ${n - 1}) g`);
    console.error(
      `seeded ${n} votes (${IMAGES} images, ${(imageBytes / IMAGES).toFixed(0)} bytes each on average)`,
    );
    return start;
  } finally {
    await deps.close();
  }
}

async function child(args: string[]): Promise<void> {
  const [mode, databaseUrl, blobDir, stateDir, cutoffIso] = args as [string, string, string, string, string];
  const deps = await buildDeps(configFor(databaseUrl, blobDir, stateDir), {
    log: jsonLogger("error"),
    migrate: false,
  });
  const peaks = { heapUsedMb: 0, heapTotalMb: 0, externalMb: 0, arrayBuffersMb: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    peaks.heapUsedMb = Math.max(peaks.heapUsedMb, m.heapUsed / 2 ** 20);
    peaks.heapTotalMb = Math.max(peaks.heapTotalMb, m.heapTotal / 2 ** 20);
    peaks.externalMb = Math.max(peaks.externalMb, m.external / 2 ** 20);
    peaks.arrayBuffersMb = Math.max(peaks.arrayBuffersMb, m.arrayBuffers / 2 ** 20);
  };
  const sampler = setInterval(sample, 50);
  // Diagnosis (`--gc-every-ms N`): a full collection every N ms tells retained memory from garbage
  // V8 has not collected yet.
  const gcEvery = Number(process.env.EXPORT_BENCH_GC_EVERY_MS ?? 0);
  const gc = (globalThis as { gc?: () => void }).gc;
  const collector = gcEvery > 0 && gc ? setInterval(gc, gcEvery) : null;
  const t0 = performance.now();
  let rows = 0;
  let bytes = 0;
  if (mode === "export") {
    const { snapshot } = await createSnapshot(deps, { cutoff: new Date(cutoffIso) }, { workDir: stateDir });
    rows = snapshot.rowCount;
    bytes = snapshot.files.reduce((s, f) => s + f.bytes, 0);
  }
  const ms = performance.now() - t0;
  clearInterval(sampler);
  if (collector) clearInterval(collector);
  sample();
  await deps.close();
  const r = (x: number) => Math.round(x * 10) / 10;
  const memory = Object.fromEntries(Object.entries(peaks).map(([k, v]) => [k, r(v)]));
  process.stdout.write(
    `${JSON.stringify({ ms, rows, bytes, peakRssMb: process.resourceUsage().maxRSS / 1024, ...memory })}\n`,
  );
}

function spawnChild(args: string[]): {
  ms: number;
  rows: number;
  bytes: number;
  peakRssMb: number;
  heapUsedMb: number;
  arrayBuffersMb: number;
} {
  const out = spawnSync(
    join(repo, "node_modules/.bin/tsx"),
    [fileURLToPath(import.meta.url), "--child", ...args],
    {
      encoding: "utf8",
      maxBuffer: 1 << 24,
      env:
        gcEveryMs > 0
          ? { ...process.env, NODE_OPTIONS: "--expose-gc", EXPORT_BENCH_GC_EVERY_MS: String(gcEveryMs) }
          : process.env,
    },
  );
  if (out.status !== 0) throw new Error(`child ${args[0]} failed: ${out.stderr.slice(-2000)}`);
  return JSON.parse(out.stdout.trim().split("\n").pop() as string);
}

let gcEveryMs = 0;

function diagnosisOf(command: string, loadBefore: number[], table: Record<string, unknown>) {
  return {
    measuredAt: new Date().toISOString(),
    command: `${command} --gc-every-ms ${gcEveryMs}`,
    what: `a full collection forced every ${gcEveryMs} ms in each export process: retained memory apart from garbage not collected yet`,
    cpus: cpus().length,
    loadAverage: { before: loadBefore, after: loadavg() },
    results: table,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--child") return child(argv.slice(1));
  const arg = (name: string, dflt: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? (argv[i + 1] as string) : dflt;
  };
  const sizes = arg("--sizes", "1000,10000,100000").split(",").map(Number);
  const runs = Number(arg("--runs", "2"));
  gcEveryMs = Number(arg("--gc-every-ms", "0"));
  const largest = Math.max(...sizes);
  const db = await throwawayDatabase();
  const dir = mkdtempSync(join(tmpdir(), "prefloop-export-bench-"));
  const blobDir = join(dir, "blobs");
  const loadBefore = loadavg();
  try {
    const start = await seed(db.url, blobDir, dir, largest);
    const results: Record<
      string,
      {
        ms: number[];
        peakRssMb: number[];
        heapUsedMb: number[];
        arrayBuffersMb: number[];
        rows: number;
        bytes: number;
      }
    > = {};
    for (let run = 0; run < runs; run++) {
      for (const n of ["idle", ...sizes.map(String)]) {
        const cutoff = new Date(start.getTime() + (n === "idle" ? 0 : (Number(n) - 1) * 1000));
        // A fresh cut-off per run so each run exports (the same cut-off would be the stored snapshot).
        const cut = new Date(cutoff.getTime() + run);
        const r = spawnChild([n === "idle" ? "idle" : "export", db.url, blobDir, dir, cut.toISOString()]);
        const e = results[n] ?? {
          ms: [],
          peakRssMb: [],
          heapUsedMb: [],
          arrayBuffersMb: [],
          rows: r.rows,
          bytes: r.bytes,
        };
        e.ms.push(r.ms);
        e.peakRssMb.push(r.peakRssMb);
        e.heapUsedMb.push(r.heapUsedMb);
        e.arrayBuffersMb.push(r.arrayBuffersMb);
        results[n] = e;
        console.error(`run ${run + 1}/${runs} ${n}: ${JSON.stringify(r)}`);
      }
    }
    const table = Object.fromEntries(
      Object.entries(results).map(([n, r]) => [
        n,
        {
          votes: n === "idle" ? 0 : Number(n),
          rows: r.rows,
          fileBytes: r.bytes,
          medianSeconds: Math.round(median(r.ms)) / 1000,
          rowsPerSecond: n === "idle" ? null : Math.round(r.rows / (median(r.ms) / 1000)),
          medianPeakRssMb: Math.round(median(r.peakRssMb) * 10) / 10,
          peakRssMbRuns: r.peakRssMb.map((x) => Math.round(x * 10) / 10),
          peakHeapUsedMbRuns: r.heapUsedMb,
          peakArrayBuffersMbRuns: r.arrayBuffersMb,
        },
      ]),
    );
    const peak = (n: number) => table[String(n)]?.medianPeakRssMb ?? Number.NaN;
    const growth = Math.round((peak(largest) / peak(Math.min(...sizes))) * 1000) / 1000;
    const out = join(repo, "bench/results/export.json");
    const existing = existsSync(out) ? JSON.parse(readFileSync(out, "utf8")) : {};
    const command = `npx tsx bench/export.ts --sizes ${sizes.join(",")} --runs ${runs}`;
    if (gcEveryMs > 0) {
      // A diagnosis is kept beside the measurement it explains; it never replaces the headline.
      existing.export = { ...existing.export, diagnosis: diagnosisOf(command, loadBefore, table) };
      writeFileSync(out, `${JSON.stringify(existing, null, 2)}\n`);
      console.log(JSON.stringify(existing.export.diagnosis, null, 2));
      return;
    }
    existing.export = {
      measuredAt: new Date().toISOString(),
      command,
      database: "PostgreSQL (throwaway database on 127.0.0.1)",
      blobs: "filesystem",
      images: `${IMAGES} distinct 64x64 PNGs, inline in jpg_0/jpg_1`,
      cpus: cpus().length,
      loadAverage: { before: loadBefore, after: loadavg() },
      runs,
      results: table,
    };
    existing.headline = {
      exportPeakMemoryGrowth: growth,
      definition: `median peak RSS of the export at ${largest} votes / at ${Math.min(...sizes)} votes (fresh process each)`,
      target: 1.1,
      met: growth <= 1.1,
    };
    writeFileSync(out, `${JSON.stringify(existing, null, 2)}\n`);
    console.log(JSON.stringify({ headline: existing.headline, results: table }, null, 2));
  } finally {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
