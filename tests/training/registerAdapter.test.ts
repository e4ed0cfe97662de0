import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, repoRoot } from "../../functions/src/config.js";
import { adapters, baseModels } from "../../functions/src/db/schema.js";
import { buildDeps, type Deps } from "../../functions/src/deps.js";
import { startLocalConsumers } from "../../functions/src/local/consumers.js";
import { blobUri } from "../../functions/src/platform/blob/uri.js";
import { jsonLogger } from "../../functions/src/platform/log.js";
import { registerTrainingResult } from "../../functions/src/training/registerAdapter.js";

const micro = join(repoRoot, "tests/fixtures/inference/micro-sd");
const weights = new Uint8Array(readFileSync(join(micro, "adapter_a/pytorch_lora_weights.safetensors")));

describe("registering adapters from training results", () => {
  let deps: Deps;
  let state: string;
  beforeAll(async () => {
    state = mkdtempSync(join(tmpdir(), "prefloop-results-"));
    deps = await buildDeps(loadConfig({ STATE_DIR: state, PREFLOOP_ENV: "test" }), {
      log: jsonLogger("error"),
    });
    await deps.db.orm.insert(baseModels).values({
      id: "tiny-shapes",
      name: "tiny",
      family: "sd",
      sha256: "ab",
      onnxUri: join(micro, "onnx"),
      width: 64,
      height: 64,
    });
  });
  afterAll(async () => {
    await deps?.close();
    rmSync(state, { recursive: true, force: true });
  });

  const result = (adapterId: string, status: "succeeded" | "failed" = "succeeded") => ({
    version: 1,
    id: `result-${adapterId}`,
    createdAt: "2026-11-21T00:00:00Z",
    type: "training_result",
    payload: {
      trainingJobId: `train-${adapterId}`,
      adapterId,
      status,
      adapterUri: status === "failed" ? null : blobUri(deps.config.blob, `adapters/${adapterId}/`),
      metrics: { heldout_implicit_acc: 0.71 },
      error: status === "failed" ? "out of memory" : null,
    },
  });
  const publish = async (adapterId: string, manifest: object | null) => {
    await deps.blobs.put(`adapters/${adapterId}/pytorch_lora_weights.safetensors`, weights);
    if (manifest)
      await deps.blobs.put(
        `adapters/${adapterId}/manifest.json`,
        new TextEncoder().encode(JSON.stringify(manifest)),
      );
  };

  it("registers a published adapter once as a candidate, however often the result arrives", async () => {
    await publish("ad-1", {
      baseModelId: "tiny-shapes",
      baseModelSha256: "ab",
      objective: "dpo",
      space: "ncp",
      rank: 4,
      alpha: 4,
      beta: 2500,
      datasetSnapshotId: "pickapic-v2-sample",
    });
    expect((await registerTrainingResult(deps, result("ad-1"))).outcome).toBe("registered");
    expect((await registerTrainingResult(deps, result("ad-1"))).outcome).toBe("already-registered");
    const rows = await deps.db.orm.select().from(adapters).where(eq(adapters.id, "ad-1"));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      status: "candidate",
      objective: "dpo",
      space: "ncp",
      rank: 4,
      blobPrefix: "adapters/ad-1/",
      hyperParameters: { beta: 2500, datasetSnapshotId: "pickapic-v2-sample" },
      datasetSnapshotId: null,
      metrics: { heldout_implicit_acc: 0.71 },
    });
  });

  it("refuses an adapter whose manifest is not published yet, so the result is retried", async () => {
    await publish("ad-2", null);
    await expect(registerTrainingResult(deps, result("ad-2"))).rejects.toThrow(/no manifest.json yet/);
    expect(await deps.db.orm.select().from(adapters).where(eq(adapters.id, "ad-2"))).toEqual([]);
  });

  it("records nothing for a failed training run", async () => {
    expect(await registerTrainingResult(deps, result("ad-3", "failed"))).toMatchObject({
      outcome: "training-failed",
      error: "out of memory",
    });
    expect(await deps.db.orm.select().from(adapters).where(eq(adapters.id, "ad-3"))).toEqual([]);
  });

  it("rejects a message that breaks the contract", async () => {
    await expect(registerTrainingResult(deps, { ...result("ad-4"), type: "training" })).rejects.toThrow();
  });

  it("the local platform's results consumer registers a result sent to the results queue", async () => {
    await publish("ad-5", {
      baseModelId: "tiny-shapes",
      baseModelSha256: "ab",
      objective: "sft",
      space: "latent",
    });
    const stop = startLocalConsumers(deps);
    try {
      await deps.queue.send("results", "result-ad-5", result("ad-5"));
      const deadline = Date.now() + 10_000;
      let rows: unknown[] = [];
      while (rows.length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        rows = await deps.db.orm.select().from(adapters).where(eq(adapters.id, "ad-5"));
      }
      expect(rows).toHaveLength(1);
    } finally {
      await stop();
    }
  });
});
