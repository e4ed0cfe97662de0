/**
 * INFERENCE_EXECUTION_PROVIDER on a machine where onnxruntime's CUDA provider cannot be used (no
 * CUDA provider libraries in this onnxruntime-node build, or no GPU): `cuda` falls back to the
 * CPU, says why, and renders exactly the pixels `cpu` renders. The tiny shapes model, 4 steps.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SdPipeline } from "../../functions/src/inference/pipeline.js";
import { InferencePool } from "../../functions/src/inference/pool.js";
import { createSessions, executionProviders } from "../../functions/src/inference/providers.js";
import { cudaProviderInstalled, repoRoot } from "./fixtures.js";

const tiny = `${repoRoot}models/tiny-shapes-onnx`;

const request = {
  images: [
    { prompt: "a red circle on a blue background", seed: 7 },
    { prompt: "a green square", seed: 8 },
  ],
  sampler: "ddim" as const,
  steps: 4,
  guidance: 5,
};

it("asks onnxruntime for CUDA first and the CPU for what CUDA does not cover", () => {
  expect(executionProviders("cuda")).toEqual(["cuda", "cpu"]);
  expect(executionProviders("cpu")).toEqual(["cpu"]);
});

describe.skipIf(cudaProviderInstalled)("cuda without a usable CUDA provider", () => {
  let cpu: SdPipeline;
  let cuda: SdPipeline;
  let scratch: string;
  beforeAll(async () => {
    cpu = await SdPipeline.load(tiny, { intraOpThreads: 1, executionProvider: "cpu" });
    cuda = await SdPipeline.load(tiny, { intraOpThreads: 1, executionProvider: "cuda" });
    scratch = mkdtempSync(join(tmpdir(), "prefloop-providers-"));
  });
  afterAll(async () => {
    await Promise.all([cpu?.release(), cuda?.release()]);
    rmSync(scratch, { recursive: true, force: true });
  });

  it("falls back to the CPU and says why; cpu is used as asked", () => {
    expect(cpu.provider).toEqual({ requested: "cpu", provider: "cpu" });
    expect(cuda.provider).toMatchObject({ requested: "cuda", provider: "cpu" });
    expect(cuda.provider.fallbackReason).toMatch(/cuda/i);
    expect(cuda.provider.fallbackReason).not.toContain("\n");
  });

  it("still generates, the same pixels as the CPU pipeline", async () => {
    const [a, b] = await Promise.all([cpu.generate(request), cuda.generate(request)]);
    expect(b.images).toHaveLength(2);
    expect(b.images.map((im) => [im.width, im.height])).toEqual([
      [64, 64],
      [64, 64],
    ]);
    for (const [i, image] of b.images.entries()) {
      expect(Buffer.from(image.rgb).equals(Buffer.from(a.images[i]?.rgb ?? []))).toBe(true);
    }
    // Not a blank image: the two prompts render differently.
    expect(Buffer.from(b.images[0]?.rgb ?? []).equals(Buffer.from(b.images[1]?.rgb ?? []))).toBe(false);
  });

  it("a worker pool reports the fallback of its workers and serves requests", async () => {
    const pool = await InferencePool.create({
      modelDir: tiny,
      workers: 1,
      intraOpThreads: 1,
      executionProvider: "cuda",
    });
    try {
      expect(pool.provider).toMatchObject({ requested: "cuda", provider: "cpu" });
      expect(pool.provider.fallbackReason).toMatch(/cuda/i);
      const result = await pool.generate({ ...request, images: request.images.slice(0, 1) });
      expect(result.images).toHaveLength(1);
    } finally {
      await pool.close();
    }
  });

  it("a model file that is broken fails on the CPU too: its own error, not a silent fallback", async () => {
    const broken = join(scratch, "broken.onnx");
    writeFileSync(broken, "this is not an ONNX model");
    await expect(createSessions([broken], {}, "cuda")).rejects.toThrow(/broken\.onnx/);
    await expect(createSessions([broken], {}, "cpu")).rejects.toThrow(/broken\.onnx/);
  });
});
