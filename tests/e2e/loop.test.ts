/**
 * Votes become adapters by themselves, on the embedded defaults (PGlite, filesystem blobs, the
 * Postgres-backed queue) with the real parts: the tiny-shapes model generates the pairs, voters
 * vote through the HTTP API, the scheduler's timer starts a round at LOOP_MIN_VOTES (snapshot +
 * training run), the worker subprocess trains on the snapshot and reports progress, the adapter
 * is registered with its lineage; once it is promoted, the next round's job carries it as the
 * parent and the adapter trained from it names it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Pair } from "../../functions/src/api/votingSchemas.js";
import { createApp } from "../../functions/src/app.js";
import { loadConfig, repoRoot } from "../../functions/src/config.js";
import { buildDeps, type Deps } from "../../functions/src/deps.js";
import { allScenes, captionOf } from "../../functions/src/domain/shapes/index.js";
import { startLocalGenerator } from "../../functions/src/generator/consumer.js";
import { registerLocalBaseModel } from "../../functions/src/local/baseModel.js";
import { startLocalConsumers } from "../../functions/src/local/consumers.js";
import { startLoopTimer } from "../../functions/src/loop/tick.js";
import { jsonLogger } from "../../functions/src/platform/log.js";
import { ADMIN_KEY, Browser } from "../api/votingHarness.js";

const MIN_VOTES = 6;

interface Run {
  id: string;
  status: string;
  adapterId: string;
  adapterRegistered: boolean;
  parentAdapterId: string | null;
  snapshotId: string | null;
  progress: { step: number; totalSteps: number } | null;
  curve: Record<string, number>[];
  startedAt: string | null;
  error: string | null;
}

describe("the loop on the embedded defaults", () => {
  let deps: Deps;
  let state: string;
  let app: ReturnType<typeof createApp>;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    state = mkdtempSync(join(tmpdir(), "prefloop-loop-e2e-"));
    const config = loadConfig({
      PREFLOOP_ENV: "test",
      STATE_DIR: state,
      ADMIN_API_KEY: ADMIN_KEY,
      WEB_DIST_DIR: join(state, "no-web"),
      MODEL_DIR: join(repoRoot, "models/tiny-shapes-onnx"),
      POOL_DEPTH: "4",
      GOLD_PAIR_RATE: "0",
      LOOP_MIN_VOTES: String(MIN_VOTES),
      LOOP_STEPS: "2",
      LOOP_TRAINING_OPTIONS: '{"evalEvery": -1}',
      LOOP_BATCH_SIZE: "2",
      LOOP_RANK: "2",
      LOOP_AUTO_EXPERIMENT: "false",
      QUEUE_MAX_ATTEMPTS: "1",
    });
    deps = await buildDeps(config, { log: jsonLogger("error") });
    expect(await registerLocalBaseModel(deps.db, config.inference.modelDir)).toBe("tiny-shapes");
    app = createApp(deps);
    stops.push(startLocalGenerator(deps), startLocalConsumers(deps), startLoopTimer(deps, 1));
  }, 120_000);

  afterAll(async () => {
    for (const stop of stops) await stop();
    await deps?.close();
    rmSync(state, { recursive: true, force: true });
  }, 60_000);

  const admin = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    const res = await app.request(path, {
      ...init,
      headers: { "x-admin-key": ADMIN_KEY, "content-type": "application/json" },
    });
    expect(res.status, `${path}: ${await res.clone().text()}`).toBeLessThan(300);
    return (await res.json()) as T;
  };

  /** `n` votes from three voters through the public API, sides mixed like real people's. */
  const vote = async (n: number, salt: number) => {
    const voters = [new Browser(app), new Browser(app), new Browser(app)];
    for (const v of voters) await v.session();
    for (let i = 0; i < n; i++) {
      const b = voters[i % voters.length] as Browser;
      let pair: Pair | null = null;
      const deadline = Date.now() + 90_000;
      while (!pair) {
        const res = await b.request("/api/pairs/next?promptSet=loop-e2e");
        if (res.status === 200) pair = (await res.json()) as Pair;
        else if (Date.now() > deadline) throw new Error(`no pair: ${res.status} ${await res.text()}`);
        else await new Promise((r) => setTimeout(r, 300));
      }
      const choice = (i * 7 + salt) % 3 === 0 ? "right" : "left";
      const res = await b.post("/api/votes", { token: pair.voteToken, choice, decisionMs: 1500 + i });
      expect(res.status, await res.clone().text()).toBe(201);
    }
  };

  const waitForRun = async (
    pred: (r: Run) => boolean,
    seen: Set<string>,
    timeoutMs: number,
  ): Promise<Run> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { runs } = await admin<{ runs: Run[] }>("/api/admin/training-runs");
      for (const r of runs) seen.add(`${r.id}:${r.status}`);
      const hit = runs.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no such run in time: ${JSON.stringify(runs)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  it("snapshots, trains with progress, registers with lineage, and trains the next round from the champion", async () => {
    const captions = allScenes().slice(0, 12).map(captionOf);
    await admin("/api/admin/prompt-sets", {
      method: "POST",
      body: JSON.stringify({
        name: "loop-e2e",
        format: "jsonl",
        content: captions.map((c) => JSON.stringify({ prompt: c })).join("\n"),
      }),
    });

    await vote(MIN_VOTES - 1, 0);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await admin<{ runs: Run[] }>("/api/admin/training-runs")).runs).toEqual([]);

    await vote(1, 1);
    const seen = new Set<string>();
    const first = await waitForRun((r) => r.status === "succeeded" || r.status === "failed", seen, 150_000);
    expect(first.error).toBeNull();
    expect(first.status).toBe("succeeded");
    expect(first.parentAdapterId).toBeNull();
    // Progress reached the platform while it trained: the run was seen running, with progress
    // (set by progress messages only) and the curve of the worker's metrics.jsonl.
    expect(seen).toContain(`${first.id}:running`);
    expect(first.progress).toMatchObject({ step: 2, totalSteps: 2 });
    expect(first.curve.map((row) => row.step)).toEqual(expect.arrayContaining([1, 2]));
    expect(typeof first.curve[0]?.loss).toBe("number");

    const snapshot = await admin<{ rowCount: number; counts: { rows: number } }>(
      `/api/admin/snapshots/${first.snapshotId}`,
    );
    expect(snapshot.rowCount).toBe(MIN_VOTES);
    const adapter = await admin<{
      id: string;
      status: string;
      parentAdapterId: string | null;
      datasetSnapshotId: string;
      lineage: { chain: { adapterId: string }[]; complete: boolean };
      manifest: { baseModelSha256: string };
    }>(`/api/admin/adapters/${first.adapterId}`);
    expect(adapter).toMatchObject({
      status: "candidate",
      parentAdapterId: null,
      datasetSnapshotId: first.snapshotId,
      lineage: { chain: [{ adapterId: first.adapterId }], complete: true },
    });

    await admin(`/api/admin/adapters/${first.adapterId}/promote`, {
      method: "POST",
      body: JSON.stringify({ reason: "e2e" }),
    });
    await vote(MIN_VOTES, 2);
    const second = await waitForRun(
      (r) => r.id !== first.id && (r.status === "succeeded" || r.status === "failed"),
      seen,
      150_000,
    );
    expect(second.error).toBeNull();
    expect(second.parentAdapterId).toBe(first.adapterId);
    const child = await admin<{ parentAdapterId: string; lineage: { chain: { adapterId: string }[] } }>(
      `/api/admin/adapters/${second.adapterId}`,
    );
    expect(child.parentAdapterId).toBe(first.adapterId);
    expect(child.lineage.chain.map((s) => s.adapterId)).toEqual([second.adapterId, first.adapterId]);
  }, 420_000);
});
