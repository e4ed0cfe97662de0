/**
 * The platform serves an SDXL-architecture model unchanged, on the embedded defaults with the real
 * parts: the tiny SDXL model's ONNX export (models/tiny-sdxl-shapes-onnx) is registered as the
 * base model, the pool and the generator draw its pairs through the Node SDXL pipeline, simulated
 * voters vote through the public HTTP API, the loop snapshots the votes and trains an adapter on the
 * diffusers folder (models/tiny-sdxl-shapes) in the worker subprocess, registers it, and the
 * experiment it starts serves champion-vs-challenger SDXL pairs that voters vote on.
 */
import { join } from "node:path";
import { eq } from "drizzle-orm";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../functions/src/config.js";
import { baseModels, generations } from "../../functions/src/db/schema.js";
import {
  importCaptions,
  type Json,
  type Platform,
  startPlatform,
  startVoters,
  trainingCaptions,
  type VoterCrowd,
  waitForLoop,
} from "./loopDriver.js";

const MODEL_DIR = join(repoRoot, "models/tiny-sdxl-shapes-onnx");
const MIN_VOTES = 12;

describe("an SDXL base model through the whole platform", () => {
  let p: Platform;
  let crowd: VoterCrowd | null = null;

  beforeAll(async () => {
    p = await startPlatform({
      MODEL_DIR,
      POOL_DEPTH: "6",
      GOLD_PAIR_RATE: "0",
      LOOP_MIN_VOTES: String(MIN_VOTES),
      LOOP_STEPS: "3",
      LOOP_BATCH_SIZE: "2",
      LOOP_RANK: "2",
      LOOP_TRAINING_OPTIONS: '{"evalEvery": -1}',
      EXPERIMENT_TRAFFIC_SHARE: "0.9",
      EXPERIMENT_MIN_VOTES: "1000",
      EXPERIMENT_MAX_VOTES: "2000",
      QUEUE_MAX_ATTEMPTS: "1",
    });
  }, 120_000);

  afterAll(async () => {
    await crowd?.stop();
    await p?.close();
  }, 60_000);

  it("registers the SDXL model, serves its pairs, trains an SDXL adapter and runs its experiment on live votes", {
    timeout: 600_000,
  }, async () => {
    const [base] = await p.deps.db.orm.select().from(baseModels).where(eq(baseModels.id, "tiny-sdxl-shapes"));
    expect(base).toMatchObject({ family: "stable-diffusion-xl", width: 64, height: 64 });
    expect(base?.diffusersUri).toBe(join(repoRoot, "models/tiny-sdxl-shapes"));

    await importCaptions(p, "sdxl-e2e", trainingCaptions(40));
    crowd = startVoters(p, { n: 3, rule: "brighter", noise: 0.1, seed: 3 });
    const running = await waitForLoop(p, (m) => m.activeExperiment?.votes >= 6, 480_000);
    const votesSoFar = crowd.votes();
    await crowd.stop();
    crowd = null;
    expect(votesSoFar).toBeGreaterThanOrEqual(MIN_VOTES);

    // The round trained on the SDXL diffusers folder and registered an SDXL adapter.
    const { runs } = await p.admin<{ runs: Json[] }>("/api/admin/training-runs");
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ status: "succeeded", error: null });
    const adapter = await p.admin(`/api/admin/adapters/${runs[0]?.adapterId}`);
    expect(adapter.manifest).toMatchObject({ family: "sdxl", pipeline: "StableDiffusionXLPipeline" });

    // Its experiment served SDXL pairs of champion vs challenger and counted the votes on them.
    const report = await p.admin(`/api/admin/experiments/${running.activeExperiment.id}`);
    expect(report.status).toBe("running");
    expect(report.arms.map((a: Json) => a.adapterId)).toEqual([null, runs[0]?.adapterId]);
    const challenger = report.arms[1];
    expect(
      challenger.statistics.n + challenger.statistics.ties + challenger.statistics.bothBad,
    ).toBeGreaterThan(0);

    // Every image was drawn by the SDXL model; the challenger's are its own, and none is blank.
    const made = await p.deps.db.orm.select().from(generations).where(eq(generations.status, "succeeded"));
    expect(made.length).toBeGreaterThan(2 * MIN_VOTES);
    expect(new Set(made.map((g) => g.baseModelId))).toEqual(new Set(["tiny-sdxl-shapes"]));
    const byChallenger = made.filter((g) => g.adapterId === runs[0]?.adapterId);
    expect(byChallenger.length).toBeGreaterThan(0);
    for (const g of [made[0], byChallenger[0]]) {
      const png = await p.deps.blobs.get(g?.blobKey as string);
      const { data, info } = await sharp(png as Uint8Array)
        .raw()
        .toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([64, 64]);
      const mean = data.reduce((s, v) => s + v, 0) / data.length;
      const spread = Math.sqrt(data.reduce((s, v) => s + (v - mean) ** 2, 0) / data.length);
      expect(spread).toBeGreaterThan(10);
    }
  });
});
