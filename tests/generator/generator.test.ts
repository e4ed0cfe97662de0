import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import sharp from "sharp";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { GenerationJob } from "../../functions/src/contracts/jobs.js";
import { baseModels, generations, prompts } from "../../functions/src/db/schema.js";
import {
  generationSqsHandler,
  pollGenerations,
  startLocalGenerator,
} from "../../functions/src/generator/consumer.js";
import {
  backendProvider,
  generationImageKey,
  handleGenerationBatch,
  modelSource,
} from "../../functions/src/generator/generator.js";
import { AdapterNotFoundError } from "../../functions/src/inference/adapters.js";
import { encodeImage } from "../../functions/src/inference/image.js";
import { NonFiniteError } from "../../functions/src/inference/pipeline.js";
import type { ImageSpec, InferenceBackend } from "../../functions/src/inference/service.js";
import { fsBlobStore } from "../../functions/src/platform/blob/fs.js";
import type { Db } from "../../functions/src/platform/db/index.js";
import { openPglite } from "../../functions/src/platform/db/pglite.js";
import { jsonLogger } from "../../functions/src/platform/log.js";
import { pgJobQueue } from "../../functions/src/platform/queue/pg.js";
import { Signer } from "../../functions/src/platform/signing.js";

/** A backend that paints solid images and can be told to fail for a prompt. */
class FakeBackend implements InferenceBackend {
  calls: ImageSpec[][] = [];
  failWith: Record<string, Error> = {};
  constructor(readonly baseModelId: string) {}
  async generate(images: ImageSpec[]) {
    this.calls.push(images);
    for (const im of images) {
      const err = this.failWith[im.prompt];
      if (err) throw err;
    }
    const encoded = await Promise.all(
      images.map(async (im) => ({
        bytes: await encodeImage(new Uint8Array(8 * 8 * 3).fill(im.seed % 256), 8, 8),
        contentType: "image/png",
        width: 8,
        height: 8,
      })),
    );
    return {
      images: encoded,
      timings: { textMs: 0, unetMs: 1, unetCalls: 1, schedulerMs: 0, vaeMs: 0, totalMs: 1 },
    };
  }
  async close() {}
}

let db: Db;
let root: string;
const log = jsonLogger("error");

function job(id: string, over: Partial<GenerationJob["payload"]> = {}): GenerationJob {
  return {
    version: 1,
    id,
    createdAt: new Date().toISOString(),
    type: "generation",
    payload: {
      generationId: id,
      baseModelId: "tiny",
      adapterId: null,
      adapterStrength: 1,
      prompt: "a red circle",
      negativePrompt: "",
      seed: 7,
      sampler: "ddim",
      steps: 4,
      guidance: 5,
      width: 8,
      height: 8,
      pairId: null,
      ...over,
    },
  };
}

async function addGeneration(id: string): Promise<void> {
  await db.orm.insert(generations).values({
    id,
    promptId: "p1",
    baseModelId: "tiny",
    seed: "7",
    sampler: "ddim",
    steps: 4,
    guidance: 5,
    width: 8,
    height: 8,
    status: "queued",
    jobId: id,
  });
}

const row = async (id: string) => (await db.orm.select().from(generations).where(eq(generations.id, id)))[0];
const delivery = (j: GenerationJob) => ({ id: j.id, body: j, attempts: 1, receipt: "r" });

beforeAll(async () => {
  db = await openPglite();
  await db.migrate();
  await db.orm
    .insert(baseModels)
    .values({ id: "tiny", name: "tiny", family: "sd15", sha256: "x", width: 8, height: 8 });
  await db.orm.insert(prompts).values({ id: "p1", text: "a red circle", source: "test" });
});
afterAll(async () => {
  await db.close();
});

let blobs: ReturnType<typeof fsBlobStore>;
let backend: FakeBackend;
const provider = async () => backend;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "prefloop-gen-"));
  blobs = fsBlobStore({
    root,
    publicUrl: "http://local.test",
    signer: new Signer("s".repeat(32)),
    defaultTtlSeconds: 60,
  });
  backend = new FakeBackend("tiny");
  return () => rmSync(root, { recursive: true, force: true });
});

describe("generator", () => {
  it("writes the PNG to the blob store and records blob key, latency and status", async () => {
    await addGeneration("g1");
    const [outcome] = await handleGenerationBatch({ db, blobs, log }, provider, [delivery(job("g1"))]);
    expect(outcome).toEqual({ status: "succeeded", generationId: "g1" });
    const r = await row("g1");
    expect(r?.status).toBe("succeeded");
    expect(r?.blobKey).toBe(generationImageKey("g1"));
    expect(r?.latencyMs).toBeGreaterThanOrEqual(0);
    expect(r?.finishedAt).toBeInstanceOf(Date);
    const png = await blobs.get(generationImageKey("g1"));
    expect(Array.from(png?.subarray(1, 4) ?? [])).toEqual([0x50, 0x4e, 0x47]); // "PNG"
  });

  it("is idempotent on the job: a redelivered, succeeded generation is skipped", async () => {
    await addGeneration("g2");
    await handleGenerationBatch({ db, blobs, log }, provider, [delivery(job("g2"))]);
    const [again] = await handleGenerationBatch({ db, blobs, log }, provider, [delivery(job("g2"))]);
    expect(again).toEqual({ status: "skipped", generationId: "g2", reason: "already succeeded" });
    expect(backend.calls).toHaveLength(1);
  });

  it("renders the two jobs of a pair in one backend call", async () => {
    await addGeneration("g3a");
    await addGeneration("g3b");
    const jobs = [
      job("g3a", { pairId: "pair1", seed: 1 }),
      job("g3b", { pairId: "pair1", seed: 2, adapterId: "ad1" }),
    ];
    const outcomes = await handleGenerationBatch({ db, blobs, log }, provider, jobs.map(delivery));
    expect(outcomes.map((o) => o.status)).toEqual(["succeeded", "succeeded"]);
    expect(backend.calls).toHaveLength(1);
    expect(backend.calls[0]?.map((c) => c.adapters)).toEqual([[], [{ adapterId: "ad1", strength: 1 }]]);
  });

  it("marks a generation failed (and acks) on an unknown adapter, without failing its pair partner", async () => {
    await addGeneration("g4a");
    await addGeneration("g4b");
    backend.failWith["bad adapter"] = new AdapterNotFoundError("adapter nope not found");
    const jobs = [job("g4a", { pairId: "pair2" }), job("g4b", { pairId: "pair2", prompt: "bad adapter" })];
    const outcomes = await handleGenerationBatch({ db, blobs, log }, provider, jobs.map(delivery));
    expect(outcomes.map((o) => o.status)).toEqual(["succeeded", "failed"]);
    expect((await row("g4b"))?.error).toMatch(/AdapterNotFoundError: adapter nope not found/);
    expect((await row("g4b"))?.status).toBe("failed");
  });

  it("reports NaN latents as a failed generation, not an image", async () => {
    await addGeneration("g5");
    backend.failWith.nan = new NonFiniteError("latents of image 0 after step 2 contains NaN");
    const [outcome] = await handleGenerationBatch({ db, blobs, log }, provider, [
      delivery(job("g5", { prompt: "nan" })),
    ]);
    expect(outcome?.status).toBe("failed");
    expect(await blobs.exists(generationImageKey("g5"))).toBe(false);
  });

  it("gives transient errors back to the queue and puts the row back to queued", async () => {
    await addGeneration("g6");
    backend.failWith.flaky = new Error("worker crashed");
    const [outcome] = await handleGenerationBatch({ db, blobs, log }, provider, [
      delivery(job("g6", { prompt: "flaky" })),
    ]);
    expect(outcome?.status).toBe("retry");
    expect((await row("g6"))?.status).toBe("queued");
  });

  it("marks a still failing generation failed on the job's last attempt, with the error, and acks it", async () => {
    await addGeneration("g6b");
    backend.failWith.stubborn = new Error("worker crashed again");
    const deps = { db, blobs, log, maxAttempts: 3 };
    const attempt = (n: number) =>
      handleGenerationBatch(deps, provider, [
        { ...delivery(job("g6b", { prompt: "stubborn" })), attempts: n },
      ]);
    expect((await attempt(2))[0]?.status).toBe("retry");
    expect(await row("g6b")).toMatchObject({
      status: "queued",
      error: "attempt 2 of 3: Error: worker crashed again",
    });
    const [last] = await attempt(3);
    expect(last).toEqual({
      status: "failed",
      generationId: "g6b",
      error: "gave up after 3 attempts: worker crashed again",
    });
    expect(await row("g6b")).toMatchObject({
      status: "failed",
      error: last?.status === "failed" ? last.error : "",
    });
    expect((await row("g6b"))?.finishedAt).toBeInstanceOf(Date);
  });

  it("marks the generation failed when the SQS redrive policy's last receive fails too", async () => {
    await addGeneration("g6c");
    backend.failWith.doomed = new Error("transient");
    const handler = generationSqsHandler({ db, blobs, log }, provider);
    const result = await handler({
      Records: [
        {
          messageId: "m1",
          receiptHandle: "rh",
          body: JSON.stringify({ id: "g6c", body: job("g6c", { prompt: "doomed" }) }),
          attributes: { ApproximateReceiveCount: "3" },
        },
      ],
    });
    expect(result.batchItemFailures).toEqual([]);
    expect((await row("g6c"))?.status).toBe("failed");
  });

  it("renders a gold pair's degraded side like its partner, then blurs and noises it", async () => {
    await addGeneration("g10a");
    await addGeneration("g10b");
    await db.orm
      .update(generations)
      .set({ degradation: "blur", degradedFromId: "g10a" })
      .where(eq(generations.id, "g10b"));
    // a sharp-edged render: a bright square on black, so a blur visibly changes it
    backend.generate = async (images) => {
      backend.calls.push(images);
      const rgb = new Uint8Array(32 * 32 * 3);
      for (let y = 8; y < 24; y++)
        for (let x = 8; x < 24; x++) rgb.fill(255, (y * 32 + x) * 3, (y * 32 + x) * 3 + 3);
      const bytes = await encodeImage(rgb, 32, 32);
      return {
        images: images.map(() => ({ bytes, contentType: "image/png", width: 32, height: 32 })),
        timings: { textMs: 0, unetMs: 1, unetCalls: 1, schedulerMs: 0, vaeMs: 0, totalMs: 1 },
      };
    };
    const jobs = [job("g10a", { pairId: "gold1" }), job("g10b", { pairId: "gold1" })];
    const outcomes = await handleGenerationBatch({ db, blobs, log }, provider, jobs.map(delivery));
    expect(outcomes.map((o) => o.status)).toEqual(["succeeded", "succeeded"]);
    expect(backend.calls).toHaveLength(1);
    const pixels = async (id: string) => {
      const { data } = await sharp((await blobs.get(generationImageKey(id))) as Buffer)
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      return data;
    };
    const [clean, degraded] = [await pixels("g10a"), await pixels("g10b")];
    expect(degraded.length).toBe(clean.length);
    // mean absolute difference per channel: a glance-visible change (blur + noise), not a re-encode
    let diff = 0;
    for (let i = 0; i < clean.length; i++) diff += Math.abs((clean[i] as number) - (degraded[i] as number));
    expect(diff / clean.length).toBeGreaterThan(20);
    // the square's edges are gone: the clean image jumps 0 → 255 at x = 8, the degraded one ramps
    const at = (d: Buffer, x: number, y: number) => d[(y * 32 + x) * 3] as number;
    expect(at(clean, 8, 16) - at(clean, 7, 16)).toBe(255);
    expect(Math.abs(at(degraded, 8, 16) - at(degraded, 7, 16))).toBeLessThan(120);
    // a redelivered job writes the same degraded image (noise seeded by the generation id)
    await db.orm.update(generations).set({ status: "queued" }).where(eq(generations.id, "g10b"));
    await handleGenerationBatch({ db, blobs, log }, provider, [delivery(jobs[1] as GenerationJob)]);
    expect((await pixels("g10b")).equals(degraded)).toBe(true);
  });

  it("retries invalid messages and generations that do not exist (they end in the dead letters)", async () => {
    const outcomes = await handleGenerationBatch({ db, blobs, log }, provider, [
      { id: "x", body: { nope: true }, attempts: 1, receipt: "r" },
      delivery(job("missing")),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["retry", "retry"]);
  });

  it("consumes the generation queue in the local poll loop", async () => {
    const queue = pgJobQueue(db.orm, { maxAttempts: 3, backoffSeconds: () => 0 });
    await addGeneration("g7a");
    await addGeneration("g7b");
    await queue.send("generation", "g7a", job("g7a", { pairId: "p7" }));
    await queue.send("generation", "g7b", job("g7b", { pairId: "p7" }));
    const controller = new AbortController();
    const loop = pollGenerations({ db, blobs, log, queue }, provider, {
      signal: controller.signal,
      idleMs: 20,
    });
    for (let i = 0; i < 100 && (await row("g7b"))?.status !== "succeeded"; i++)
      await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    await loop;
    expect((await row("g7a"))?.status).toBe("succeeded");
    expect((await row("g7b"))?.status).toBe("succeeded");
    expect(backend.calls).toHaveLength(1);
    expect((await queue.stats("generation")).ready).toBe(0);
  });

  it("reports partial batch failures from the SQS Lambda handler", async () => {
    await addGeneration("g8");
    backend.failWith.flaky = new Error("transient");
    const handler = generationSqsHandler({ db, blobs, log }, provider);
    const record = (messageId: string, body: unknown) => ({
      messageId,
      receiptHandle: `rh-${messageId}`,
      body: typeof body === "string" ? body : JSON.stringify(body),
      attributes: { ApproximateReceiveCount: "1" },
    });
    await addGeneration("g9");
    const result = await handler({
      Records: [
        record("m1", { id: "g8", body: job("g8") }),
        record("m2", "not json"),
        record("m3", { id: "g9", body: job("g9", { prompt: "flaky" }) }),
      ],
    });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: "m2" }, { itemIdentifier: "m3" }]);
    expect((await row("g8"))?.status).toBe("succeeded");
  });
});

describe("local generator", () => {
  it("does not start (and says why) when there is no exported model", async () => {
    const lines: string[] = [];
    const queue = pgJobQueue(db.orm, { maxAttempts: 3 });
    const stop = startLocalGenerator({
      db,
      blobs,
      queue,
      log: jsonLogger("warn", (l) => lines.push(l)),
      config: {
        inference: {
          modelDir: join(root, "none"),
          modelCacheDir: root,
          workers: 1,
          intraOpThreads: 1,
          executionProvider: "cpu",
          adapterCacheBytes: 1,
        },
      },
    });
    await stop();
    expect(lines.join("")).toMatch(/generator not started: no exported model/);
  });
});

describe("backend provider", () => {
  it("loads a backend per base model from its onnx_uri, one at a time", async () => {
    const created: string[] = [];
    const closed: string[] = [];
    await db.orm.insert(baseModels).values({
      id: "other",
      name: "o",
      family: "sd15",
      sha256: "y",
      width: 8,
      height: 8,
      onnxUri: "s3://bkt/models/o/onnx",
    });
    const provider = backendProvider(
      { db, blobs, log },
      async (id, source) => {
        created.push(`${id}:${source}`);
        return Object.assign(new FakeBackend(id), { close: async () => void closed.push(id) });
      },
      "/default/model",
    );
    await provider("tiny");
    await provider("tiny");
    await provider("other");
    expect(created).toEqual(["tiny:/default/model", "other:blob:models/o/onnx"]);
    expect(closed).toEqual(["tiny"]);
    await expect(provider("ghost")).rejects.toThrow(/base model ghost does not exist/);
    await provider.close();
    expect(modelSource("file:///a/b%20c", "x")).toBe("/a/b c");
  });
});
