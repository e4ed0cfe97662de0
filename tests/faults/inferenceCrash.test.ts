/**
 * An inference worker thread that crashes (an `error` event, then `exit` with a non-zero code,
 * as Node reports an uncaught exception in a worker) is replaced exactly once: the pool keeps its
 * size, and a request sent while it is down waits for the replacement and is served.
 */
import type { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { InferencePool } from "../../functions/src/inference/pool.js";
import { repoRoot } from "../inference/fixtures.js";

const modelDir = `${repoRoot}tests/fixtures/inference/micro-sd/onnx`;
const request = {
  images: [{ prompt: "a red circle", seed: 1 }],
  sampler: "ddim" as const,
  steps: 4,
  guidance: 5,
};

describe("a crashed inference worker", () => {
  let pool: InferencePool;
  beforeAll(async () => {
    pool = await InferencePool.create({ modelDir, workers: 1, intraOpThreads: 1 });
  });
  afterAll(async () => pool?.close());

  it("is replaced once, and the pool serves again", async () => {
    await pool.generate(request);
    const spawn = vi.spyOn(pool as unknown as { spawn: () => Promise<void> }, "spawn");
    const slots = (pool as unknown as { slots: { worker: Worker }[] }).slots;
    const crashed = slots[0]?.worker as Worker;
    crashed.emit("error", new Error("worker crashed"));
    await crashed.terminate(); // exit code 1: the second event of the same crash
    const waiting = pool.generate(request);
    const deadline = Date.now() + 30_000;
    while (pool.size < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500)); // a second replacement would have started by now
    expect(spawn).toHaveBeenCalledTimes(1);
    expect(pool.size).toBe(1);
    expect((pool as unknown as { slots: { worker: Worker }[] }).slots[0]?.worker).not.toBe(crashed);
    expect((await waiting).images).toHaveLength(1);
    expect((await pool.generate(request)).images).toHaveLength(1);
  });
});
