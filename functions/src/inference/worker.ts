/**
 * worker_threads entry: one loaded pipeline per worker; generation requests in, images out.
 * onnxruntime's `run()` blocks this thread for the whole step, never the server's event loop.
 */
import { parentPort, workerData } from "node:worker_threads";
import { type GenerateRequest, SdPipeline } from "./pipeline.js";
import type { ExecutionProvider, ProviderChoice } from "./providers.js";

export interface WorkerData {
  modelDir: string;
  intraOpThreads: number;
  executionProvider: ExecutionProvider;
}

export type WorkerRequest = { id: number; request: GenerateRequest };
export type WorkerResponse =
  | { id: number; ok: true; result: Awaited<ReturnType<SdPipeline["generate"]>> }
  | { id: number; ok: false; error: { name: string; message: string } }
  | { id: -1; ok: true; ready: true; provider: ProviderChoice }
  | { id: -1; ok: false; error: { name: string; message: string } };

const port = parentPort;
if (!port) throw new Error("inference worker must run in a worker thread");
const data = workerData as WorkerData;

try {
  const pipeline = await SdPipeline.load(data.modelDir, {
    intraOpThreads: data.intraOpThreads,
    executionProvider: data.executionProvider,
  });
  port.on("message", (msg: WorkerRequest) => {
    pipeline.generate(msg.request).then(
      (result) => {
        const transfer = result.images.flatMap((im) => [im.rgb.buffer, im.latents.buffer]) as ArrayBuffer[];
        port.postMessage({ id: msg.id, ok: true, result } satisfies WorkerResponse, transfer);
      },
      (err: Error) => {
        port.postMessage({
          id: msg.id,
          ok: false,
          error: { name: err.name, message: err.message },
        } satisfies WorkerResponse);
      },
    );
  });
  port.postMessage({ id: -1, ok: true, ready: true, provider: pipeline.provider } satisfies WorkerResponse);
} catch (err) {
  const e = err as Error;
  port.postMessage({
    id: -1,
    ok: false,
    error: { name: e.name, message: e.message },
  } satisfies WorkerResponse);
}
