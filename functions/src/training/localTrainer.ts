/**
 * Training jobs on the local platform: each one runs the worker as a subprocess
 * (`python -m prefloop_worker train --job job.json`), with the lease kept alive while it trains.
 * Each stdout line of the worker is one JSON message: `training_progress` lines while it trains
 * (forwarded to the results queue as they arrive), the `training_result` last; the result goes
 * to the results queue too, like the GPU worker's messages in AWS. A failed run throws, so the
 * job is retried (the worker resumes from its checkpoint); on the last attempt the failed result
 * is forwarded instead, so the run shows the worker's error rather than waiting for ever.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { repoRoot } from "../config.js";
import {
  CONTRACT_VERSION,
  type TrainingJob,
  type TrainingResult,
  trainingJob,
  trainingProgress,
  trainingResult,
} from "../contracts/jobs.js";
import type { Logger } from "../platform/log.js";
import type { JobHandler } from "../platform/queue/consumer.js";
import type { JobQueue } from "../platform/queue/port.js";

export interface LocalTrainerOptions {
  stateDir: string;
  queue: JobQueue;
  log: Logger;
  python?: string;
  /** Seconds of lease the trainer asks for at a time while the subprocess runs. */
  leaseSeconds?: number;
  /** Deliveries before the queue gives up on a job (QUEUE_MAX_ATTEMPTS); the last one reports failure. */
  maxAttempts?: number | undefined;
  /** Stops a running worker (SIGTERM) when the platform shuts down; the job is retried later. */
  signal?: AbortSignal | undefined;
}

function runWorker(
  python: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  onLine: (line: string) => void,
  signal?: AbortSignal,
): Promise<{ code: number; stderr: string; lastLine: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ["-m", "prefloop_worker", ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let lastLine: string | null = null;
    child.stderr.on("data", (b) => {
      stderr = (stderr + String(b)).slice(-8000);
    });
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      if (!line.trim()) return;
      lastLine = line;
      onLine(line);
    });
    const closed = new Promise((r) => lines.once("close", r));
    const stop = () => child.kill("SIGTERM");
    signal?.addEventListener("abort", stop, { once: true });
    child.once("error", reject);
    child.once("exit", (code, killedBy) => {
      signal?.removeEventListener("abort", stop);
      void closed.then(() => resolve({ code: code ?? (killedBy ? 128 : 1), stderr, lastLine }));
    });
  });
}

/** A stdout line that is a progress message, or null (other lines are not the platform's). */
function progressMessage(line: string): ReturnType<typeof trainingProgress.parse> | null {
  if (!line.startsWith("{")) return null;
  try {
    const parsed = trainingProgress.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** The worker's `failed` result message of a run that failed, when it wrote one. */
function failedResult(resultFile: string): TrainingResult | null {
  try {
    const r = trainingResult.parse(JSON.parse(readFileSync(resultFile, "utf8")));
    return r.payload.status === "failed" ? r : null;
  } catch {
    return null;
  }
}

/** A failed result for a worker that died without writing one. */
function crashResult(job: TrainingJob, why: string): TrainingResult {
  return trainingResult.parse({
    version: CONTRACT_VERSION,
    id: `${job.id}.result`.slice(0, 128),
    createdAt: new Date().toISOString(),
    type: "training_result",
    payload: {
      trainingJobId: job.id,
      adapterId: job.payload.adapterId,
      status: "failed",
      adapterUri: null,
      metrics: {},
      error: `training worker exited with ${why}`.slice(0, 4000),
    },
  });
}

export function localTrainer(opts: LocalTrainerOptions): JobHandler {
  const python = opts.python ?? join(repoRoot, ".venv", "bin", "python");
  const leaseSeconds = opts.leaseSeconds ?? 300;
  return async (delivery, ctx) => {
    const job = trainingJob.parse(delivery.body);
    const dir = join(opts.stateDir, "training", job.id);
    mkdirSync(dir, { recursive: true });
    const jobFile = join(dir, "job.json");
    const resultFile = join(dir, "result.json");
    writeFileSync(jobFile, JSON.stringify(job));
    rmSync(resultFile, { force: true });
    const keepAlive = setInterval(
      () => void ctx.extend(leaseSeconds).catch(() => {}),
      (leaseSeconds * 1000) / 3,
    );
    opts.log.info("training started", {
      jobId: job.id,
      objective: job.payload.objective,
      space: job.payload.space,
    });
    let forwarding: Promise<unknown> = Promise.resolve();
    const forward = (line: string) => {
      const msg = progressMessage(line);
      if (!msg) return;
      forwarding = forwarding
        .then(() => opts.queue.send("results", msg.id, msg))
        .catch((err) => opts.log.warn("progress not forwarded", { jobId: job.id, error: String(err) }));
    };
    try {
      const { code, stderr } = await runWorker(
        python,
        [
          "train",
          "--job",
          jobFile,
          "--work-dir",
          join(opts.stateDir, "training-work"),
          "--result-out",
          resultFile,
          "--no-progress",
        ],
        { ...process.env, PYTHONUNBUFFERED: "1" },
        forward,
        opts.signal,
      );
      await forwarding;
      if (opts.signal?.aborted) throw new Error("training stopped: the platform is shutting down");
      if (code !== 0) {
        const last = stderr.trim().split("\n").slice(-3).join(" | ");
        const finalAttempt = delivery.attempts >= (opts.maxAttempts ?? Number.POSITIVE_INFINITY);
        const failed = finalAttempt
          ? (failedResult(resultFile) ?? crashResult(job, `${code}: ${last}`))
          : null;
        if (failed) {
          await opts.queue.send("results", failed.id, failed);
          opts.log.warn("training failed on its last attempt", {
            jobId: job.id,
            error: failed.payload.error,
          });
          return;
        }
        throw new Error(`training worker exited with ${code}: ${last}`);
      }
      const result = trainingResult.parse(JSON.parse(readFileSync(resultFile, "utf8")));
      await opts.queue.send("results", result.id, result);
      opts.log.info("training finished", { jobId: job.id, adapterId: result.payload.adapterId });
    } finally {
      clearInterval(keepAlive);
    }
  };
}
