/**
 * The local training loop: a training job on the queue runs the real worker as a subprocess on a
 * small SD-shaped model, its result goes through the results queue, and the adapter is registered.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, repoRoot } from "../../functions/src/config.js";
import type { TrainingJob } from "../../functions/src/contracts/jobs.js";
import { adapters, baseModels, datasetSnapshots, jobs } from "../../functions/src/db/schema.js";
import { buildDeps, type Deps } from "../../functions/src/deps.js";
import { modelFolderSha256 } from "../../functions/src/local/baseModel.js";
import { startLocalConsumers } from "../../functions/src/local/consumers.js";
import { blobUri } from "../../functions/src/platform/blob/uri.js";
import { jsonLogger } from "../../functions/src/platform/log.js";

const python = join(repoRoot, ".venv", "bin", "python");

describe("local training loop", () => {
  let deps: Deps;
  let work: string;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "prefloop-train-"));
    // A small SD-shaped pipeline with random weights and a Pick-a-Pic snapshot, made by the
    // worker's own test helpers (diffusers + pyarrow).
    execFileSync(
      python,
      [
        "-c",
        [
          "import sys; from pathlib import Path",
          `sys.path.insert(0, ${JSON.stringify(join(repoRoot, "gpu-worker/tests/train"))})`,
          "import synthetic",
          `w = Path(${JSON.stringify(work)})`,
          "synthetic.build_random_sd(w / 'model')",
          "synthetic.write_snapshot(w / 'snapshot.parquet', synthetic.shapes_rows(16, seed=3))",
        ].join("\n"),
      ],
      { stdio: "pipe", timeout: 180_000 },
    );
    deps = await buildDeps(loadConfig({ STATE_DIR: join(work, "state"), PREFLOOP_ENV: "test" }), {
      log: jsonLogger("error"),
    });
    await deps.db.orm.insert(baseModels).values({
      id: "random-sd",
      name: "random",
      family: "stable-diffusion",
      sha256: modelFolderSha256(join(work, "model")),
      width: 64,
      height: 64,
    });
    await deps.db.orm.insert(datasetSnapshots).values({
      id: "snap-local",
      blobPrefix: "datasets/snap-local/",
      cutoff: new Date(),
      dedupeKey: "snap-local",
      rowCount: 16,
    });
  }, 240_000);
  afterAll(async () => {
    await deps?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it("trains, publishes and registers an adapter", { timeout: 300_000 }, async () => {
    const job: TrainingJob = {
      version: 1,
      id: "train-local-1",
      createdAt: new Date().toISOString(),
      type: "training",
      payload: {
        adapterId: "ad-local-1",
        baseModelId: "random-sd",
        baseModelUri: pathToFileURL(join(work, "model")).href,
        parentAdapterId: null,
        parentAdapterUri: null,
        datasetSnapshotId: "snap-local",
        datasetUri: pathToFileURL(join(work, "snapshot.parquet")).href,
        outputUri: blobUri(deps.config.blob, "adapters/ad-local-1/"),
        objective: "dpo",
        space: "latent",
        beta: 1000,
        rank: 2,
        alpha: 2,
        steps: 2,
        learningRate: 1e-3,
        batchSize: 2,
        gradientAccumulation: 1,
        seed: 0,
        extra: { evalEvery: -1 },
      },
    };
    const stop = startLocalConsumers(deps);
    try {
      await deps.queue.send("training", job.id, job);
      const deadline = Date.now() + 120_000;
      let rows: (typeof adapters.$inferSelect)[] = [];
      while (rows.length === 0) {
        if (Date.now() > deadline) {
          const state = await deps.db.orm.select().from(jobs);
          const summary = state.map((j) => [j.queue, j.id, j.status, j.attempts, j.lastError]);
          throw new Error(`no adapter registered; jobs: ${JSON.stringify(summary)}`);
        }
        await new Promise((r) => setTimeout(r, 500));
        rows = await deps.db.orm.select().from(adapters).where(eq(adapters.id, "ad-local-1"));
      }
      expect(rows[0]).toMatchObject({
        status: "candidate",
        objective: "dpo",
        space: "latent",
        rank: 2,
        datasetSnapshotId: "snap-local",
        trainingJobId: "train-local-1",
      });
      expect(await deps.blobs.exists("adapters/ad-local-1/pytorch_lora_weights.safetensors")).toBe(true);
    } finally {
      await stop();
    }
  });
});
