/** The generator with the real inference service (micro SD model), PGlite and the filesystem blob store. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerationJob } from "../../functions/src/contracts/jobs.js";
import { adapters, baseModels, generations, prompts } from "../../functions/src/db/schema.js";
import { generatorBackends } from "../../functions/src/generator/consumer.js";
import { generationImageKey, handleGenerationBatch } from "../../functions/src/generator/generator.js";
import { serializeSafetensors } from "../../functions/src/inference/safetensors.js";
import { fsBlobStore } from "../../functions/src/platform/blob/fs.js";
import type { Db } from "../../functions/src/platform/db/index.js";
import { openPglite } from "../../functions/src/platform/db/pglite.js";
import { jsonLogger } from "../../functions/src/platform/log.js";
import { Signer } from "../../functions/src/platform/signing.js";
import { cudaProviderInstalled } from "../inference/fixtures.js";

const micro = new URL("../fixtures/inference/micro-sd/", import.meta.url).pathname;
const log = jsonLogger("error");
let db: Db;
let root: string;
let blobs: ReturnType<typeof fsBlobStore>;
let backends: ReturnType<typeof generatorBackends>;

const job = (id: string, adapterId: string | null, pairId: string | null = null): GenerationJob => ({
  version: 1,
  id,
  createdAt: new Date().toISOString(),
  type: "generation",
  payload: {
    generationId: id,
    baseModelId: "micro",
    adapterId,
    adapterStrength: 1,
    prompt: "a red circle on a blue background",
    negativePrompt: "",
    seed: 42,
    sampler: "euler_ancestral",
    steps: 4,
    guidance: 5,
    width: 16,
    height: 16,
    pairId,
  },
});

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "prefloop-geninf-"));
  blobs = fsBlobStore({
    root,
    publicUrl: "http://x.test",
    signer: new Signer("k".repeat(32)),
    defaultTtlSeconds: 60,
  });
  db = await openPglite();
  await db.migrate();
  await db.orm
    .insert(baseModels)
    .values({ id: "micro", name: "micro", family: "sd15", sha256: "x", width: 16, height: 16 });
  await db.orm.insert(prompts).values({ id: "p", text: "a red circle", source: "test" });
  await blobs.put(
    "adapters/a/pytorch_lora_weights.safetensors",
    readFileSync(`${micro}adapter_a/pytorch_lora_weights.safetensors`),
  );
  await blobs.put(
    "adapters/misfit/pytorch_lora_weights.safetensors",
    serializeSafetensors({
      "unet.mid_block.attentions.0.transformer_blocks.0.attn9.to_q.lora_A.weight": {
        shape: [1, 16],
        data: new Float32Array(16),
      },
    }),
  );
  await db.orm.insert(adapters).values([
    { id: "a", baseModelId: "micro", blobPrefix: "adapters/a", rank: 4, alpha: 8 },
    { id: "misfit", baseModelId: "micro", blobPrefix: "adapters/misfit", rank: 1, alpha: 1 },
  ]);
  for (const id of ["g1", "g2", "g3", "g4", "g5", "g6"]) {
    await db.orm.insert(generations).values({
      id,
      promptId: "p",
      baseModelId: "micro",
      seed: "42",
      sampler: "euler_ancestral",
      steps: 4,
      guidance: 5,
      width: 16,
      height: 16,
    });
  }
  backends = generatorBackends(
    { db, blobs, log },
    {
      inference: {
        modelDir: `${micro}onnx`,
        modelCacheDir: join(root, "models"),
        workers: 1,
        intraOpThreads: 1,
        executionProvider: "cpu",
        adapterCacheBytes: 1 << 20,
      },
    },
  );
});
afterAll(async () => {
  await backends?.close();
  await db?.close();
  rmSync(root, { recursive: true, force: true });
});

const row = async (id: string) => (await db.orm.select().from(generations).where(eq(generations.id, id)))[0];

describe("generator with the micro SD model", () => {
  it("renders a pair (base model vs adapter) into PNGs of the model's size", async () => {
    const outcomes = await handleGenerationBatch({ db, blobs, log }, backends, [
      { id: "g1", body: job("g1", null, "pair"), attempts: 1, receipt: "r" },
      { id: "g2", body: job("g2", "a", "pair"), attempts: 1, receipt: "r" },
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["succeeded", "succeeded"]);
    const a = await blobs.get(generationImageKey("g1"));
    const b = await blobs.get(generationImageKey("g2"));
    const meta = await sharp(Buffer.from(a ?? [])).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", 16, 16]);
    expect(Buffer.from(a ?? []).equals(Buffer.from(b ?? []))).toBe(false);
    expect((await row("g2"))?.latencyMs).toBeGreaterThan(0);
  });

  it("fails generations whose adapter is unknown or does not fit, naming the problem", async () => {
    const outcomes = await handleGenerationBatch({ db, blobs, log }, backends, [
      { id: "g3", body: job("g3", "ghost"), attempts: 1, receipt: "r" },
      { id: "g4", body: job("g4", "misfit"), attempts: 1, receipt: "r" },
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["failed", "failed"]);
    expect((await row("g3"))?.error).toMatch(/AdapterNotFoundError: adapter ghost not found/);
    expect((await row("g4"))?.error).toMatch(/AdapterMismatchError: .*attn9\.to_q\.lora_A\.weight/);
  });
});

describe.skipIf(cudaProviderInstalled)("generator asked for CUDA where it cannot be used", () => {
  it("renders on the CPU, logs the provider once per model load and with each generation", async () => {
    const lines: Record<string, unknown>[] = [];
    const captured = jsonLogger("info", (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
    const cudaBackends = generatorBackends(
      { db, blobs, log: captured },
      {
        inference: {
          modelDir: `${micro}onnx`,
          modelCacheDir: join(root, "models"),
          workers: 1,
          intraOpThreads: 1,
          executionProvider: "cuda",
          adapterCacheBytes: 1 << 20,
        },
      },
    );
    try {
      for (const pair of [["g5"], ["g6"]]) {
        const outcomes = await handleGenerationBatch(
          { db, blobs, log: captured },
          cudaBackends,
          pair.map((id) => ({ id, body: job(id, null), attempts: 1, receipt: "r" })),
        );
        expect(outcomes.map((o) => o.status)).toEqual(["succeeded"]);
      }
    } finally {
      await cudaBackends.close();
    }
    expect((await row("g5"))?.blobKey).toBe(generationImageKey("g5"));
    const providerLines = lines.filter((l) => String(l.msg).startsWith("inference execution provider"));
    expect(providerLines).toHaveLength(1);
    expect(providerLines[0]).toMatchObject({
      level: "warn",
      baseModelId: "micro",
      requested: "cuda",
      provider: "cpu",
      reason: expect.stringMatching(/cuda/i),
    });
    const succeeded = lines.filter((l) => l.msg === "generation succeeded");
    expect(succeeded.map((l) => [l.generationId, l.provider])).toEqual([
      ["g5", "cpu"],
      ["g6", "cpu"],
    ]);
  });
});
