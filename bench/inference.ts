/**
 * Inference benchmark: the Node pipeline (onnxruntime-node, worker pool) vs diffusers (PyTorch
 * CPU) on the same model, prompts, seeds, scheduler (DDIM), steps and guidance, in one run on
 * the same machine. Pairs alternate between the two sides so both see the same background load.
 *
 *   npx tsx bench/inference.ts [--pairs 8] [--steps 20] [--threads 2] [--family sd|sdxl]
 *
 * `--family sdxl`: the tiny SDXL model (models/tiny-sdxl-shapes + models/tiny-sdxl-shapes-onnx)
 * against diffusers' StableDiffusionXLPipeline, with two random adapters the diffusers side makes
 * (peft) under test-artifacts/random-sdxl; writes bench/results/inference-sdxl.json.
 *
 * Model: models/tiny-shapes (+ models/tiny-shapes-onnx) when present, else the random-weight
 * model of the same architecture from `.venv/bin/python scripts/golden-inference.py --random-model
 * test-artifacts/random-sd` (speed depends on the architecture, not the weights). Writes
 * bench/results/inference.json.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { type LoraAdapter, loadLoraAdapter, loraFeeds } from "../functions/src/inference/lora.js";
import { loraTargets, readManifest } from "../functions/src/inference/model.js";
import { InferencePool } from "../functions/src/inference/pool.js";

const root = new URL("../", import.meta.url).pathname;
const { values: args } = parseArgs({
  options: {
    pairs: { type: "string", default: "8" },
    steps: { type: "string", default: "20" },
    guidance: { type: "string", default: "5" },
    threads: { type: "string", default: "auto" },
    switches: { type: "string", default: "8" },
    model: { type: "string" },
    onnx: { type: "string" },
    adapters: { type: "string" },
    family: { type: "string", default: "sd" },
    out: { type: "string" },
  },
});
const sdxl = args.family === "sdxl";
if (!["sd", "sdxl"].includes(args.family)) {
  console.error(`--family ${args.family}: expected sd or sdxl`);
  process.exit(2);
}
const outFile = args.out ?? `${root}bench/results/${sdxl ? "inference-sdxl" : "inference"}.json`;
const sdxlAdapters = `${root}test-artifacts/random-sdxl`;

const tiny =
  existsSync(`${root}models/tiny-shapes-onnx/manifest.json`) &&
  existsSync(`${root}models/tiny-shapes/model_index.json`);
const modelDir =
  args.model ??
  (sdxl
    ? `${root}models/tiny-sdxl-shapes`
    : tiny
      ? `${root}models/tiny-shapes`
      : `${root}test-artifacts/random-sd/diffusers`);
const onnxDir =
  args.onnx ??
  (sdxl
    ? `${root}models/tiny-sdxl-shapes-onnx`
    : tiny
      ? `${root}models/tiny-shapes-onnx`
      : `${root}test-artifacts/random-sd/onnx`);
// Two random rank-4/rank-2 adapters made by scripts/golden-inference.py --random-model (they fit
// every model of the tiny architecture, the trained one included).
const adapterDirs = (
  args.adapters ??
  (sdxl
    ? `${sdxlAdapters}/adapter_a,${sdxlAdapters}/adapter_b`
    : `${root}test-artifacts/random-sd/adapter_a,${root}test-artifacts/random-sd/adapter_b`)
).split(",");
for (const p of [modelDir, onnxDir, ...(sdxl && !args.adapters ? [] : adapterDirs)]) {
  if (!existsSync(p)) {
    console.error(
      `missing ${p}: run .venv/bin/python scripts/golden-inference.py --random-model test-artifacts/random-sd`,
    );
    process.exit(2);
  }
}
const pairs = Number(args.pairs);
const steps = Number(args.steps);
const guidance = Number(args.guidance);
const threadChoices = args.threads === "auto" ? [1, 2] : [Number(args.threads)];
const maxThreads = Math.max(...threadChoices);
const switches = Number(args.switches);
const prompts = [
  "two small red circles on a blue background",
  "a large yellow square at the left on a purple background",
  "a green triangle at the top on a white background",
  "three orange circles on a black background",
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
};
const loadAverage = () =>
  readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number) as number[];

// --- diffusers, driven over a line protocol ---------------------------------------------------
const py = spawn(
  `${root}.venv/bin/python`,
  [
    `${root}bench/inference_diffusers.py`,
    "--model",
    modelDir,
    "--threads",
    String(maxThreads),
    ...(sdxl && !args.adapters ? ["--make-adapters", sdxlAdapters] : []),
  ],
  {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, PYTHONWARNINGS: "ignore" },
  },
);
const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
async function pyCall(cmd?: Record<string, unknown>): Promise<Record<string, unknown>> {
  if (cmd) py.stdin.write(`${JSON.stringify(cmd)}\n`);
  for (;;) {
    const next = await lines.next();
    if (next.done) throw new Error("diffusers process ended");
    try {
      return JSON.parse(next.value) as Record<string, unknown>;
    } catch {
      // not ours (library output)
    }
  }
}
const pyReady = await pyCall();

// --- Node --------------------------------------------------------------------------------------
const t = performance.now();
const pools = new Map<number, InferencePool>();
for (const n of threadChoices)
  pools.set(n, await InferencePool.create({ modelDir: onnxDir, workers: 1, intraOpThreads: n }));
const nodeLoadMs = (performance.now() - t) / threadChoices.length;
let pool = pools.get(maxThreads) as InferencePool;
const manifest = await readManifest(onnxDir);
const targets = loraTargets(manifest);
const size = manifest.image.width;
const adapters: LoraAdapter[] = adapterDirs.map((d, i) =>
  loadLoraAdapter(`a${i}`, readFileSync(`${d}/pytorch_lora_weights.safetensors`), targets),
);

async function nodePair(i: number, nSteps: number, adapter: number | null) {
  const started = performance.now();
  const lora =
    adapter === null
      ? undefined
      : { [`a${adapter}`]: loraFeeds(targets, [{ adapter: adapters[adapter] as LoraAdapter, strength: 1 }]) };
  const key = adapter === null ? undefined : `a${adapter}`;
  const prompt = prompts[i % prompts.length] as string;
  const r = await pool.generate({
    images: [
      { prompt, seed: 2 * i, loraKey: key },
      { prompt, seed: 2 * i + 1, loraKey: key },
    ],
    sampler: "ddim",
    steps: nSteps,
    guidance,
    lora,
  });
  return { ms: performance.now() - started, unetMsPerStep: r.timings.unetMs / r.timings.unetCalls };
}
const pyPair = async (i: number, nSteps: number, adapter: number | null) =>
  (await pyCall({
    op: "pair",
    prompt: prompts[i % prompts.length],
    seeds: [2 * i, 2 * i + 1],
    steps: nSteps,
    guidance,
    size,
    adapter: adapter === null ? null : `a${adapter}`,
  })) as { ms: number; switch_ms: number };

// Each side at its faster thread count on this machine right now (with other jobs running, a
// second thread can cost far more than it gains, PyTorch's OpenMP pool especially).
const calibration: { node: Record<number, number>; diffusers: Record<number, number> } = {
  node: {},
  diffusers: {},
};
for (const n of threadChoices) {
  pool = pools.get(n) as InferencePool;
  await nodePair(0, 2, null);
  await pyCall({ op: "threads", threads: n });
  await pyPair(0, 2, null);
  const nodeRuns: number[] = [];
  const pyRuns: number[] = [];
  for (let k = 0; k < 3; k++) {
    nodeRuns.push((await nodePair(k, 4, null)).ms);
    pyRuns.push((await pyPair(k, 4, null)).ms);
  }
  calibration.node[n] = median(nodeRuns);
  calibration.diffusers[n] = median(pyRuns);
}
const best = (m: Record<number, number>) => Number(Object.entries(m).sort((a, b) => a[1] - b[1])[0]?.[0]);
const nodeThreads = best(calibration.node);
const torchThreads = best(calibration.diffusers);
pool = pools.get(nodeThreads) as InferencePool;
for (const [n, p] of pools) if (n !== nodeThreads) await p.close();
await pyCall({ op: "threads", threads: torchThreads });

const weights = sdxl
  ? "tiny-sdxl-shapes"
  : tiny && !args.model
    ? "tiny-shapes"
    : "random weights, tiny-model architecture";
const loadBefore = loadAverage();
console.error(
  `model ${onnxDir} (${weights}), ${size}x${size}, DDIM ${steps} steps, cfg ${guidance}, ${pairs} pairs, threads node ${nodeThreads} / torch ${torchThreads} (calibration ms ${JSON.stringify(calibration)}), load ${loadBefore}`,
);
await nodePair(0, 2, null);
await pyPair(0, 2, null);
const node: number[] = [];
const torchMs: number[] = [];
const nodeStep: number[] = [];
for (let i = 0; i < pairs; i++) {
  // Alternate which side goes first.
  const runNode = async () => {
    const r = await nodePair(i, steps, null);
    node.push(r.ms);
    nodeStep.push(r.unetMsPerStep);
  };
  const runPy = async () => torchMs.push((await pyPair(i, steps, null)).ms);
  if (i % 2 === 0) {
    await runNode();
    await runPy();
  } else {
    await runPy();
    await runNode();
  }
  console.error(`pair ${i}: node ${node.at(-1)?.toFixed(0)} ms, diffusers ${torchMs.at(-1)?.toFixed(0)} ms`);
}

// --- adapter switching -------------------------------------------------------------------------
const switchSteps = 4;
for (const [i, d] of adapterDirs.entries()) await pyCall({ op: "load_adapter", name: `a${i}`, path: d });
const nodeSame: number[] = [];
const nodeSwitched: number[] = [];
const pySame: number[] = [];
const pySwitched: number[] = [];
const pySetAdapters: number[] = [];
let nodePrev = 0;
let pyPrev = 0;
await nodePair(0, switchSteps, 0);
await pyPair(0, switchSteps, 0);
for (let k = 0; k < switches; k++) {
  // same, switch, same, switch …
  const target = k % 2 === 0 ? nodePrev : 1 - nodePrev;
  const n = await nodePair(k, switchSteps, target);
  (target === nodePrev ? nodeSame : nodeSwitched).push(n.ms);
  nodePrev = target;
  const pt = k % 2 === 0 ? pyPrev : 1 - pyPrev;
  const p = await pyPair(k, switchSteps, pt);
  if (pt !== pyPrev) pySetAdapters.push(p.switch_ms);
  (pt === pyPrev ? pySame : pySwitched).push(p.ms);
  pyPrev = pt;
}
// What a switch costs in Node: building the feed set from the cached adapter (done per request).
const feedMs: number[] = [];
for (let k = 0; k < 20; k++) {
  const s = performance.now();
  loraFeeds(targets, [{ adapter: adapters[k % 2] as LoraAdapter, strength: 1 }]);
  feedMs.push(performance.now() - s);
}

const pyStats = (await pyCall({ op: "stats" })) as { peak_rss_mb: number };
await pyCall({ op: "quit" }).catch(() => undefined);
await pool.close();
const loadAfter = loadAverage();

const nodeIps = (2 * node.length) / (node.reduce((a, b) => a + b, 0) / 1000);
const torchIps = (2 * torchMs.length) / (torchMs.reduce((a, b) => a + b, 0) / 1000);
const stepMs = median(nodeStep);
const nodeSwitchCost = median(nodeSwitched) - median(nodeSame);
const result = {
  command: `npx tsx bench/inference.ts ${process.argv.slice(2).join(" ")}`.trim(),
  date: new Date().toISOString(),
  machine: {
    cpus: (await import("node:os")).cpus().length,
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadAfter,
  },
  model: {
    onnx: onnxDir.replace(root, ""),
    diffusers: modelDir.replace(root, ""),
    family: sdxl ? "sdxl" : "sd",
    pipeline: sdxl ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline",
    weights,
    adapters: adapterDirs.map((d) => d.replace(root, "")),
    size,
  },
  work: { pairs, imagesPerPair: 2, sampler: "ddim", steps, guidance, cfgBatch: 4, prompts },
  threads: {
    rule: "each side runs at the faster of the tried thread counts (median of three 4-step pairs each)",
    calibrationPairMs: calibration,
    node: nodeThreads,
    diffusers: torchThreads,
  },
  node: {
    runtime: `node ${process.version}, onnxruntime-node, 1 worker thread x ${nodeThreads} intra-op threads`,
    loadMs: nodeLoadMs,
    imagesPerSecond: nodeIps,
    pairLatencyMs: { p50: median(node), p95: quantile(node, 0.95), all: node },
    unetMsPerStepMedian: stepMs,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  },
  diffusers: {
    runtime: `torch ${pyReady.torch} CPU, ${torchThreads} threads`,
    loadMs: pyReady.load_ms,
    imagesPerSecond: torchIps,
    pairLatencyMs: { p50: median(torchMs), p95: quantile(torchMs, 0.95), all: torchMs },
    peakRssMb: pyStats.peak_rss_mb,
  },
  ratioImagesPerSecond: nodeIps / torchIps,
  adapterSwitch: {
    steps: switchSteps,
    node: {
      sameAdapterCallMs: median(nodeSame),
      switchedAdapterCallMs: median(nodeSwitched),
      switchCostMs: nodeSwitchCost,
      feedBuildMs: median(feedMs),
      switchCostPercentOfStep: (100 * Math.max(0, nodeSwitchCost)) / stepMs,
      feedBuildPercentOfStep: (100 * median(feedMs)) / stepMs,
    },
    diffusers: {
      sameAdapterCallMs: median(pySame),
      switchedAdapterCallMs: median(pySwitched),
      setAdaptersMs: median(pySetAdapters),
    },
  },
  targets: { imagesPerSecondRatio: ">= 2", adapterSwitch: "< 5% of a step" },
};
mkdirSync(new URL("results/", import.meta.url), { recursive: true });
writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
console.log(
  JSON.stringify(
    {
      ratio: result.ratioImagesPerSecond,
      node: result.node.pairLatencyMs,
      diffusers: result.diffusers.pairLatencyMs,
      adapterSwitch: result.adapterSwitch,
    },
    null,
    1,
  ),
);
