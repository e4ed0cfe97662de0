/**
 * The local trainer's side of the worker's stdout protocol, against a stand-in worker (a shell
 * script in the python's place, fast): each `training_progress` line reaches the results queue
 * while the worker still runs, other lines are ignored, the result follows; a failure is retried
 * until the last attempt, which reports the worker's failed result (or a crash) instead.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../functions/src/config.js";
import type { TrainingJob } from "../../functions/src/contracts/jobs.js";
import { jsonLogger } from "../../functions/src/platform/log.js";
import type { Delivery } from "../../functions/src/platform/queue/port.js";
import { localTrainer } from "../../functions/src/training/localTrainer.js";

const job: TrainingJob = {
  version: 1,
  id: "job-p",
  createdAt: "2026-11-30T00:00:00Z",
  type: "training",
  payload: {
    adapterId: "ad-p",
    baseModelId: "tiny",
    baseModelUri: "file:///models/tiny",
    parentAdapterId: null,
    parentAdapterUri: null,
    datasetSnapshotId: "snap",
    datasetUri: "file:///snap/",
    outputUri: "file:///out/",
    objective: "dpo",
    space: "latent",
    beta: 5000,
    rank: 2,
    alpha: 2,
    steps: 2,
    learningRate: 1e-4,
    batchSize: 2,
    gradientAccumulation: 1,
    seed: 0,
    extra: {},
  },
};

const progress = (step: number) =>
  JSON.stringify({
    version: 1,
    id: `job-p.progress.${step}`,
    createdAt: "2026-11-30T00:00:01Z",
    type: "training_progress",
    payload: {
      trainingJobId: "job-p",
      adapterId: "ad-p",
      step,
      totalSteps: 2,
      metrics: [{ step, loss: 0.5 }],
    },
  });
const result = (status: "succeeded" | "failed") =>
  JSON.stringify({
    version: 1,
    id: "job-p.result",
    createdAt: "2026-11-30T00:00:02Z",
    type: "training_result",
    payload: {
      trainingJobId: "job-p",
      adapterId: "ad-p",
      status,
      adapterUri: status === "succeeded" ? "file:///out" : null,
      metrics: {},
      error: status === "failed" ? "parent adapter ad-0 could not be read" : null,
    },
  });

describe("local trainer: the worker's stdout protocol", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "prefloop-protocol-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A stand-in worker: prints `lines` (a pause after the first), writes `written` to --result-out, exits `code`. */
  const worker = (name: string, lines: string[], written: string | null, code: number) => {
    const path = join(dir, name);
    const [first, ...rest] = lines;
    writeFileSync(
      path,
      [
        "#!/bin/bash",
        'while [ $# -gt 0 ]; do if [ "$1" = "--result-out" ]; then out="$2"; fi; shift; done',
        first ? `echo '${first}'` : "",
        "sleep 0.4",
        ...rest.map((l) => `echo '${l}'`),
        written ? `echo '${written}' > "$out"` : "",
        `exit ${code}`,
      ].join("\n"),
    );
    chmodSync(path, 0o755);
    return path;
  };

  const run = async (python: string, attempts: number, maxAttempts: number) => {
    const sent: { id: string; at: number; body: unknown }[] = [];
    const queue = {
      send: async (_q: string, id: string, body: unknown) => {
        sent.push({ id, at: Date.now(), body });
      },
    };
    const handle = localTrainer({
      stateDir: dir,
      queue: queue as never,
      log: jsonLogger("error"),
      python,
      maxAttempts,
    });
    const delivery: Delivery = { id: job.id, body: job, attempts, receipt: "r" };
    const started = Date.now();
    const outcome = await handle(delivery, { extend: async () => {} }).then(
      () => "ok",
      (e: Error) => e.message,
    );
    return { sent, outcome, started, ended: Date.now() };
  };

  it("forwards progress lines as they come, then the result", async () => {
    const py = worker(
      "ok.sh",
      [progress(1), "not a message", progress(2), result("succeeded")],
      result("succeeded"),
      0,
    );
    const r = await run(py, 1, 5);
    expect(r.outcome).toBe("ok");
    expect(r.sent.map((s) => s.id)).toEqual(["job-p.progress.1", "job-p.progress.2", "job-p.result"]);
    // The first progress message went out before the worker's pause ended.
    expect((r.sent[0]?.at ?? 0) - r.started).toBeLessThan((r.sent[1]?.at ?? 0) - r.started);
    expect((r.sent[1]?.at ?? 0) - (r.sent[0]?.at ?? 0)).toBeGreaterThanOrEqual(300);
  });

  it("retries a failure, and reports the worker's failed result on the last attempt", async () => {
    const py = worker("fail.sh", [progress(1), result("failed")], result("failed"), 1);
    const early = await run(py, 1, 3);
    expect(early.outcome).toMatch(/training worker exited with 1/);
    expect(early.sent.map((s) => s.id)).toEqual(["job-p.progress.1"]);
    const last = await run(py, 3, 3);
    expect(last.outcome).toBe("ok");
    expect(last.sent.map((s) => s.id)).toEqual(["job-p.progress.1", "job-p.result"]);
    expect(last.sent[1]?.body).toMatchObject({
      payload: { status: "failed", error: "parent adapter ad-0 could not be read" },
    });
  });

  it("reports a crash without a result on the last attempt", async () => {
    const py = worker("crash.sh", [], null, 137);
    const last = await run(py, 2, 2);
    expect(last.outcome).toBe("ok");
    expect(last.sent).toHaveLength(1);
    expect(last.sent[0]?.body).toMatchObject({
      type: "training_result",
      payload: { status: "failed", error: expect.stringMatching(/training worker exited with 137/) },
    });
  });

  it("reads LOOP_TRAINING_OPTIONS as the jobs' extra, refusing what is not a JSON object", () => {
    expect(loadConfig({ LOOP_TRAINING_OPTIONS: '{"preset":"diffusion-dpo"}' }).loop.trainingOptions).toEqual({
      preset: "diffusion-dpo",
    });
    expect(loadConfig({}).loop.trainingOptions).toEqual({});
    expect(() => loadConfig({ LOOP_TRAINING_OPTIONS: "[1]" })).toThrow(
      /^LOOP_TRAINING_OPTIONS must be a JSON object/,
    );
  });
});
