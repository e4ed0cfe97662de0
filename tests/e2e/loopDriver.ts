/**
 * Drives the whole loop on the embedded defaults (PGlite, filesystem blobs, the Postgres-backed
 * queue, the tiny-shapes model, the worker subprocess for training) in this process, the way
 * `npm start -- --demo` runs it: simulated voters use only the public HTTP API (session, pairs,
 * votes) and prefer images by a pixel rule no prompt mentions; the scheduler's timer turns the
 * loop (snapshot → training → registered adapter → experiment → decision). Admin reads go
 * through the admin HTTP API. Shared by `tests/e2e/loopPromotion.test.ts` and `bench/loop.ts`.
 *
 * The judge: the same pixel rule applied to held-out prompts (captions the tiny model never
 * trained on and the voters never saw), base vs adapter with the same prompt and seed, rendered
 * through the admin playground API.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { createApp } from "../../functions/src/app.js";
import { loadConfig, repoRoot } from "../../functions/src/config.js";
import { type PreferenceRule, preferenceScore } from "../../functions/src/demo/preference.js";
import { appTransport, SimulatedVoter, type Transport } from "../../functions/src/demo/simulatedVoter.js";
import { buildDeps, type Deps } from "../../functions/src/deps.js";
import { allScenes, captionOf, isHeldout } from "../../functions/src/domain/shapes/index.js";
import { seededRandom } from "../../functions/src/domain/stats/random.js";
import { startLocalGenerator } from "../../functions/src/generator/consumer.js";
import { registerLocalBaseModel } from "../../functions/src/local/baseModel.js";
import { startLocalConsumers } from "../../functions/src/local/consumers.js";
import { startLoopTimer } from "../../functions/src/loop/tick.js";
import { jsonLogger } from "../../functions/src/platform/log.js";

export const LOOP_ADMIN_KEY = "loop-driver-admin-key-0123456789abcdef";

// biome-ignore lint/suspicious/noExplicitAny: admin responses are read loosely here
export type Json = Record<string, any>;

/** A seeded uniform generator (mulberry32) for the voters' noise. */
export { seededRandom };

export const trainingCaptions = (n: number): string[] =>
  allScenes()
    .map(captionOf)
    .filter((c) => !isHeldout(c))
    .slice(0, n);
export const heldoutCaptions = (n: number): string[] =>
  allScenes()
    .map(captionOf)
    .filter((c) => isHeldout(c))
    .slice(0, n);

export interface Platform {
  deps: Deps;
  transport: Transport;
  admin<T = Json>(path: string, init?: { method?: string; body?: unknown }): Promise<T>;
  close(): Promise<void>;
}

/** The platform in this process on a fresh state folder, with its consumers and the loop timer. */
export async function startPlatform(env: Record<string, string>, tickSeconds = 1): Promise<Platform> {
  // The training subprocess inherits this: one torch thread is fastest on a small shared machine.
  process.env.OMP_NUM_THREADS ??= "1";
  const state = mkdtempSync(join(tmpdir(), "prefloop-loop-"));
  const config = loadConfig({
    PREFLOOP_ENV: "test",
    STATE_DIR: state,
    ADMIN_API_KEY: LOOP_ADMIN_KEY,
    WEB_DIST_DIR: join(state, "no-web"),
    MODEL_DIR: join(repoRoot, "models/tiny-shapes-onnx"),
    RATE_LIMIT_VOTER_PER_MINUTE: "100000",
    RATE_LIMIT_IP_PER_MINUTE: "100000",
    ...env,
  });
  const deps = await buildDeps(config, { log: jsonLogger("error") });
  await registerLocalBaseModel(deps.db, config.inference.modelDir);
  const app = createApp(deps);
  const stops = [startLocalGenerator(deps), startLocalConsumers(deps), startLoopTimer(deps, tickSeconds)];
  const transport = appTransport(app);
  const admin = async <T = Json>(
    path: string,
    init: { method?: string; body?: unknown } = {},
  ): Promise<T> => {
    const res = await transport(path, {
      method: init.method ?? "GET",
      headers: { "x-admin-key": LOOP_ADMIN_KEY, "content-type": "application/json" },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${init.method ?? "GET"} ${path}: HTTP ${res.status} ${text}`);
    return JSON.parse(text) as T;
  };
  return {
    deps,
    transport,
    admin,
    close: async () => {
      for (const stop of stops) await stop();
      await deps.close();
      rmSync(state, { recursive: true, force: true });
    },
  };
}

export interface VoterCrowd {
  voters: SimulatedVoter[];
  votes(): number;
  stop(): Promise<void>;
}

/** `n` simulated voters with the hidden rule, voting as fast as the server serves pairs. */
export function startVoters(
  p: Platform,
  opts: { n: number; rule: PreferenceRule; noise: number; seed: number },
): VoterCrowd {
  const controller = new AbortController();
  const random = seededRandom(opts.seed);
  const voters = Array.from(
    { length: opts.n },
    () =>
      new SimulatedVoter(p.transport, {
        rule: opts.rule,
        noise: opts.noise,
        random,
        // a believable decision time (above QUALITY_MIN_DECISION_MS), not waited for
        decisionMs: () => 900 + Math.floor(600 * random()),
        sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 250))),
      }),
  );
  const errors: string[] = [];
  const runs = voters.map((v) => v.run(controller.signal, (err) => errors.push(String(err))));
  return {
    voters,
    votes: () => voters.reduce((s, v) => s + v.votes.length, 0),
    stop: async () => {
      controller.abort();
      await Promise.all(runs);
    },
  };
}

/** Imports a prompt set of captions through the admin API. */
export async function importCaptions(p: Platform, name: string, captions: string[]): Promise<void> {
  await p.admin("/api/admin/prompt-sets", {
    method: "POST",
    body: { name, format: "jsonl", content: captions.map((c) => JSON.stringify({ prompt: c })).join("\n") },
  });
}

/** Polls `GET /api/admin/loop` until `done` says so (or the time is up); returns the last status. */
export async function waitForLoop(
  p: Platform,
  done: (baseModel: Json) => boolean,
  timeoutMs: number,
  onPoll: (baseModel: Json) => void = () => {},
): Promise<Json> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await p.admin("/api/admin/loop");
    const m = status.baseModels[0] as Json;
    onPoll(m);
    if (done(m)) return m;
    if (Date.now() > deadline) throw new Error(`the loop did not get there in time: ${JSON.stringify(m)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function imageScore(p: Platform, url: string, rule: PreferenceRule): Promise<number> {
  const res = await p.transport(url);
  if (res.status !== 200) throw new Error(`image ${url}: HTTP ${res.status}`);
  const { data, info } = await sharp(Buffer.from(await res.arrayBuffer()))
    .raw()
    .toBuffer({ resolveWithObject: true });
  return preferenceScore(rule, { width: info.width, height: info.height, channels: info.channels, data });
}

export interface Judgement {
  n: number;
  wins: number;
  losses: number;
  ties: number;
  /** Wins over all comparisons (a tie is not a win). */
  winRate: number;
  /** One-sided exact binomial p-value of at least `wins` wins in `n` under a fair coin. */
  pValue: number;
}

/** Exact P(X ≥ k) for X ~ Binomial(n, ½), summed in log space. */
export function binomialUpperTail(k: number, n: number): number {
  const logFact = [0];
  for (let i = 1; i <= n; i++) logFact.push((logFact[i - 1] as number) + Math.log(i));
  let p = 0;
  for (let i = k; i <= n; i++)
    p += Math.exp(
      (logFact[n] as number) - (logFact[i] as number) - (logFact[n - i] as number) - n * Math.LN2,
    );
  return Math.min(1, p);
}

/**
 * The judge: each held-out caption rendered by the base model and by `adapterId` with one seed
 * (the playground API), compared by the rule. The adapter wins when its image scores higher.
 */
export async function judgeAdapter(
  p: Platform,
  adapterId: string,
  captions: string[],
  rule: PreferenceRule,
  seed = 1234,
): Promise<Judgement> {
  const runs: string[] = [];
  for (const [i, prompt] of captions.entries()) {
    const r = await p.admin("/api/admin/playground", {
      method: "POST",
      body: { prompt, left: null, right: adapterId, seed: seed + i },
    });
    runs.push(r.id);
  }
  let wins = 0;
  let losses = 0;
  let ties = 0;
  for (const id of runs) {
    let run: Json;
    for (;;) {
      const res = await p.transport(`/api/admin/playground/${id}`, {
        headers: { "x-admin-key": LOOP_ADMIN_KEY },
      });
      run = (await res.json()) as Json;
      if (res.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (run.left.status !== "succeeded" || run.right.status !== "succeeded")
      throw new Error(`playground ${id} failed: ${JSON.stringify(run)}`);
    const [base, adapted] = await Promise.all([
      imageScore(p, run.left.url, rule),
      imageScore(p, run.right.url, rule),
    ]);
    if (adapted > base) wins++;
    else if (adapted < base) losses++;
    else ties++;
  }
  const n = wins + losses + ties;
  return { n, wins, losses, ties, winRate: wins / n, pValue: binomialUpperTail(wins, n) };
}
