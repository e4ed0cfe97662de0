/**
 * Which Parquet library writes the snapshots: the three candidates write the same rows (a
 * snapshot's shape: strings, numbers, two inline images of incompressible bytes), streamed in
 * batches of 500 rows to a file on disk, each in its own child process so peak RSS is its own.
 * pyarrow then reads each file back (row count and one image compared byte for byte).
 *
 *   npm i --no-save --prefix /tmp/pq hyparquet-writer parquet-wasm apache-arrow @duckdb/node-api
 *   PARQUET_CANDIDATES=/tmp/pq/node_modules npx tsx bench/parquet-libraries.ts [--rows 20000]
 *
 * Results are merged into bench/results/export.json (`libraries`).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../", import.meta.url));
const BATCH = 500;
const IMAGE_BYTES = 1500;

interface Row {
  caption: string;
  jpg_0: Uint8Array;
  jpg_1: Uint8Array;
  label_0: number;
  label_1: number;
  ranking_id: bigint;
  created_at: Date;
  has_label: boolean;
}

function batchOf(start: number, n: number): Row[] {
  return Array.from({ length: n }, (_, i) => ({
    caption: `a red circle above a blue square number ${start + i}`,
    jpg_0: randomBytes(IMAGE_BYTES),
    jpg_1: randomBytes(IMAGE_BYTES),
    label_0: (start + i) % 2,
    label_1: 1 - ((start + i) % 2),
    ranking_id: BigInt(start + i),
    created_at: new Date(1_700_000_000_000 + (start + i) * 1000),
    has_label: true,
  }));
}

type Writer = (file: string, rows: number, req: NodeRequire) => Promise<void>;
/** The candidates are installed outside the repository (see the header), so their types are not at hand. */
// biome-ignore lint/suspicious/noExplicitAny: modules loaded from PARQUET_CANDIDATES at run time
type Untyped = any;

const writers: Record<string, Writer> = {
  async "hyparquet-writer"(file, rows, req) {
    const { ParquetWriter, fileWriter } = req("hyparquet-writer") as Untyped;
    const schema = [
      { name: "root", num_children: 8 },
      { name: "caption", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED" },
      { name: "jpg_0", type: "BYTE_ARRAY", repetition_type: "REQUIRED" },
      { name: "jpg_1", type: "BYTE_ARRAY", repetition_type: "REQUIRED" },
      { name: "label_0", type: "DOUBLE", repetition_type: "REQUIRED" },
      { name: "label_1", type: "DOUBLE", repetition_type: "REQUIRED" },
      { name: "ranking_id", type: "INT64", repetition_type: "REQUIRED" },
      {
        name: "created_at",
        type: "INT64",
        repetition_type: "REQUIRED",
        logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" },
      },
      { name: "has_label", type: "BOOLEAN", repetition_type: "REQUIRED" },
    ] as never;
    const w = new ParquetWriter({ writer: fileWriter(file), schema });
    for (let i = 0; i < rows; i += BATCH) {
      const b = batchOf(i, Math.min(BATCH, rows - i));
      await w.write({
        rowGroupSize: BATCH,
        columnData: [
          { name: "caption", data: b.map((r: Row) => r.caption) },
          { name: "jpg_0", data: b.map((r) => r.jpg_0) },
          { name: "jpg_1", data: b.map((r) => r.jpg_1) },
          { name: "label_0", data: b.map((r) => r.label_0) },
          { name: "label_1", data: b.map((r) => r.label_1) },
          { name: "ranking_id", data: b.map((r) => r.ranking_id) },
          { name: "created_at", data: b.map((r) => BigInt(r.created_at.getTime()) * 1000n) },
          { name: "has_label", data: b.map((r) => r.has_label) },
        ],
      });
    }
    await w.finish();
  },

  async "parquet-wasm"(file, rows, req) {
    const arrow = req("apache-arrow") as Untyped;
    const pw = req("parquet-wasm") as Untyped;
    const { createWriteStream } = await import("node:fs");
    const { Writable } = await import("node:stream");
    let i = 0;
    const batches = new ReadableStream({
      pull(controller) {
        if (i >= rows) return controller.close();
        const b = batchOf(i, Math.min(BATCH, rows - i));
        i += b.length;
        const t = arrow.tableFromArrays({
          label_0: Float64Array.from(b.map((r) => r.label_0)),
          label_1: Float64Array.from(b.map((r) => r.label_1)),
          ranking_id: BigInt64Array.from(b.map((r) => r.ranking_id)),
        });
        const jpg0 = arrow.vectorFromArray(
          b.map((r) => r.jpg_0),
          new arrow.Binary(),
        );
        const jpg1 = arrow.vectorFromArray(
          b.map((r) => r.jpg_1),
          new arrow.Binary(),
        );
        const created = arrow.vectorFromArray(
          b.map((r) => r.created_at.getTime()),
          new arrow.TimestampMillisecond("UTC"),
        );
        const hasLabel = arrow.vectorFromArray(
          b.map((r) => r.has_label),
          new arrow.Bool(),
        );
        const caption = arrow.vectorFromArray(
          b.map((r: Row) => r.caption),
          new arrow.Utf8(),
        );
        const full = new arrow.Table({ caption })
          .assign(t)
          .assign(new arrow.Table({ jpg_0: jpg0, jpg_1: jpg1 }))
          .assign(new arrow.Table({ created_at: created, has_label: hasLabel }));
        const wasmTable = pw.Table.fromIPCStream(arrow.tableToIPC(full, "stream"));
        for (const rb of wasmTable.recordBatches()) controller.enqueue(rb);
      },
    });
    const bytes = await pw.transformParquetStream(batches);
    await bytes.pipeTo(Writable.toWeb(createWriteStream(file)));
  },

  async "@duckdb/node-api"(file, rows, req) {
    const duck = req("@duckdb/node-api") as Untyped;
    const instance = await duck.DuckDBInstance.create(":memory:");
    const con = await instance.connect();
    await con.run(
      "create table t (caption varchar, jpg_0 blob, jpg_1 blob, label_0 double, label_1 double, ranking_id bigint, created_at timestamptz, has_label boolean)",
    );
    const app = await con.createAppender("t");
    for (let i = 0; i < rows; i += BATCH) {
      for (const r of batchOf(i, Math.min(BATCH, rows - i))) {
        app.appendVarchar(r.caption);
        app.appendBlob(r.jpg_0);
        app.appendBlob(r.jpg_1);
        app.appendDouble(r.label_0);
        app.appendDouble(r.label_1);
        app.appendBigInt(r.ranking_id);
        app.appendTimestampTZ(new duck.DuckDBTimestampTZValue(BigInt(r.created_at.getTime()) * 1000n));
        app.appendBoolean(r.has_label);
        app.endRow();
      }
      app.flushSync();
    }
    app.closeSync();
    await con.run(`copy t to '${file}' (format parquet, row_group_size ${BATCH})`);
    con.closeSync();
  },
};

async function child(lib: string, file: string, rows: number, modules: string): Promise<void> {
  const req = createRequire(join(modules, "noop.js"));
  const t0 = performance.now();
  await (writers[lib] as Writer)(file, rows, req);
  const ms = performance.now() - t0;
  process.stdout.write(
    `${JSON.stringify({ ms, peakRssMb: process.resourceUsage().maxRSS / 1024, bytes: statSync(file).size })}\n`,
  );
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const modules = process.env.PARQUET_CANDIDATES;
  if (!modules || !existsSync(modules)) throw new Error("set PARQUET_CANDIDATES to a node_modules folder");
  if (argv[0] === "--child") return child(argv[1] as string, argv[2] as string, Number(argv[3]), modules);
  const rowsAt = argv.indexOf("--rows");
  const sizes = (rowsAt >= 0 ? (argv[rowsAt + 1] as string) : "5000,40000").split(",").map(Number);
  const runs = 3;
  const dir = mkdtempSync(join(tmpdir(), "parquet-libs-"));
  const loadBefore = loadavg()[0];
  const results: Record<
    string,
    { ms: number[]; peakRssMb: number[]; bytes: number; readByPyarrow: boolean }
  > = {};
  try {
    for (let run = 0; run < runs; run++) {
      for (const rows of sizes)
        for (const lib of Object.keys(writers)) {
          const file = join(dir, `${lib.replace(/[@/]/g, "_")}-${run}.parquet`);
          const out = spawnSync(
            join(repo, "node_modules/.bin/tsx"),
            [fileURLToPath(import.meta.url), "--child", lib, file, String(rows)],
            { encoding: "utf8", env: process.env },
          );
          if (out.status !== 0) throw new Error(`${lib}: ${out.stderr}`);
          const r = JSON.parse(out.stdout.trim().split("\n").pop() as string) as {
            ms: number;
            peakRssMb: number;
            bytes: number;
          };
          const check = execFileSync(
            join(repo, ".venv/bin/python"),
            [
              "-c",
              "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(t.num_rows, t.schema.field('jpg_0').type, len(t.column('jpg_0')[0].as_py()))",
              file,
            ],
            { encoding: "utf8" },
          ).trim();
          const key = `${lib} @ ${rows}`;
          const entry = results[key] ?? {
            ms: [] as number[],
            peakRssMb: [] as number[],
            bytes: r.bytes,
            readByPyarrow: true,
          };
          entry.ms.push(r.ms);
          entry.peakRssMb.push(r.peakRssMb);
          entry.readByPyarrow &&= check === `${rows} binary ${IMAGE_BYTES}`;
          results[key] = entry;
          rmSync(file);
        }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const summary = Object.fromEntries(
    Object.entries(results).map(([key, r]) => [
      key,
      {
        medianMs: Math.round(median(r.ms)),
        rowsPerSecond: Math.round(Number(key.split(" @ ")[1]) / (median(r.ms) / 1000)),
        medianPeakRssMb: Math.round(median(r.peakRssMb)),
        fileBytes: r.bytes,
        readByPyarrow: r.readByPyarrow,
      },
    ]),
  );
  const out = join(repo, "bench/results/export.json");
  const existing = existsSync(out) ? JSON.parse(readFileSync(out, "utf8")) : {};
  existing.libraries = {
    measuredAt: new Date().toISOString(),
    rows: sizes,
    imageBytes: IMAGE_BYTES,
    batchRows: BATCH,
    runs,
    cpus: cpus().length,
    loadAverage: { before: loadBefore, after: loadavg()[0] },
    results: summary,
    peakRssGrowth: Object.fromEntries(
      Object.keys(writers).map((lib) => {
        const lo = summary[`${lib} @ ${sizes[0]}`]?.medianPeakRssMb ?? Number.NaN;
        const hi = summary[`${lib} @ ${sizes[sizes.length - 1]}`]?.medianPeakRssMb ?? Number.NaN;
        return [lib, Math.round((hi / lo) * 100) / 100];
      }),
    ),
  };
  writeFileSync(out, `${JSON.stringify(existing, null, 2)}\n`);
  console.log(JSON.stringify(existing.libraries, null, 2));
}

await main();
