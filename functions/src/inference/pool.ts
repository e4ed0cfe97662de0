/**
 * A pool of inference workers (worker_threads), each with its own loaded pipeline, so the event
 * loop of the server or queue consumer stays free while images generate. `workers: 0` runs the
 * pipeline on the calling thread instead (one request at a time is all a Lambda handler needs,
 * and a single-file bundle has no separate worker script).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { type GenerateRequest, NonFiniteError, SdPipeline } from "./pipeline.js";
import type { ExecutionProvider, ProviderChoice } from "./providers.js";
import type { WorkerData, WorkerRequest, WorkerResponse } from "./worker.js";

export type GenerateResult = Awaited<ReturnType<SdPipeline["generate"]>>;

export interface PoolOptions {
  modelDir: string;
  /** Worker threads; 0 = run on the calling thread. */
  workers: number;
  /** onnxruntime intra-op threads per worker. */
  intraOpThreads: number;
  /** The execution provider asked for (default `cpu`). */
  executionProvider?: ExecutionProvider;
}

/** An error thrown inside a worker, rebuilt with its name so callers can tell kinds apart. */
function rebuild(error: { name: string; message: string }): Error {
  const err = error.name === "NonFiniteError" ? new NonFiniteError(error.message) : new Error(error.message);
  if (error.name !== "NonFiniteError") err.name = error.name;
  return err;
}

/** The worker script, or, when running from TypeScript sources (tests, tsx), a bootstrap that registers tsx first. */
function newWorker(workerData: WorkerData): Worker {
  const js = new URL("./worker.js", import.meta.url);
  if (existsSync(fileURLToPath(js))) return new Worker(js, { workerData });
  const ts = new URL("./worker.ts", import.meta.url).href;
  // Resolved here, so the worker finds tsx whatever the process's working folder is.
  const cjs = createRequire(import.meta.url).resolve("tsx/esm/api");
  const esm = cjs.replace(/\.cjs$/, ".mjs");
  const tsx = existsSync(esm) ? pathToFileURL(esm).href : "tsx/esm/api";
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(ts)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

interface Slot {
  worker: Worker;
  busy: boolean;
  /** Set once the worker is given up on; its later `error`/`exit` events change nothing. */
  lost: boolean;
}

interface Task {
  id: number;
  request: GenerateRequest;
  resolve: (r: GenerateResult) => void;
  reject: (e: Error) => void;
}

export class InferencePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private readonly inflight = new Map<number, { task: Task; slot: Slot }>();
  private nextId = 1;
  private closed = false;
  private local: SdPipeline | null = null;
  private localChain: Promise<unknown> = Promise.resolve();
  private choice: ProviderChoice | null = null;

  private constructor(readonly options: PoolOptions) {}

  static async create(options: PoolOptions): Promise<InferencePool> {
    const pool = new InferencePool(options);
    if (options.workers <= 0) {
      pool.local = await SdPipeline.load(options.modelDir, {
        intraOpThreads: options.intraOpThreads,
        executionProvider: options.executionProvider,
      });
      pool.choice = pool.local.provider;
      return pool;
    }
    try {
      // The first worker finds out which provider works; the others (and replacements) start on it.
      await pool.spawn();
      await Promise.all(Array.from({ length: options.workers - 1 }, () => pool.spawn()));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** The execution provider the pool's pipelines run on (asked for, used, and why they differ). */
  get provider(): ProviderChoice {
    return this.choice ?? { requested: this.requested, provider: this.requested };
  }

  private get requested(): ExecutionProvider {
    return this.options.executionProvider ?? "cpu";
  }

  get size(): number {
    return this.local ? 1 : this.slots.length;
  }

  /** Requests waiting for a free worker. */
  get pending(): number {
    return this.queue.length;
  }

  private spawn(): Promise<void> {
    const worker = newWorker({
      modelDir: this.options.modelDir,
      intraOpThreads: this.options.intraOpThreads,
      executionProvider: this.choice?.provider ?? this.requested,
    });
    const slot: Slot = { worker, busy: true, lost: false };
    return new Promise((resolve, reject) => {
      worker.on("message", (msg: WorkerResponse) => {
        if (msg.id === -1) {
          if (msg.ok) {
            if ("provider" in msg) this.choice ??= msg.provider;
            slot.busy = false;
            this.slots.push(slot);
            resolve();
            this.dispatch();
          } else {
            reject(rebuild(msg.error));
          }
          return;
        }
        const entry = this.inflight.get(msg.id);
        if (!entry) return;
        this.inflight.delete(msg.id);
        slot.busy = false;
        if (msg.ok && "result" in msg) entry.task.resolve(msg.result);
        else if (msg.ok) entry.task.reject(new Error("inference worker sent no result"));
        else if (!msg.ok) entry.task.reject(rebuild(msg.error));
        this.dispatch();
      });
      worker.on("error", (err) => {
        reject(err);
        this.failWorker(slot, err);
      });
      worker.on("exit", (code) => {
        if (!this.closed && code !== 0)
          this.failWorker(slot, new Error(`inference worker exited with code ${code}`));
      });
    });
  }

  /**
   * Gives up on a worker that errored or exited and starts one replacement. A crash raises both
   * `error` and `exit`; only the first of them counts, so a crash costs exactly one new worker.
   */
  private failWorker(slot: Slot, err: Error): void {
    if (slot.lost) return;
    slot.lost = true;
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots.splice(index, 1);
    for (const [id, entry] of this.inflight) {
      if (entry.slot === slot) {
        this.inflight.delete(id);
        entry.task.reject(err);
      }
    }
    if (!this.closed) {
      // Replace the lost worker; requests wait in the queue meanwhile.
      this.spawn().catch(() => {
        for (const task of this.queue.splice(0)) task.reject(err);
      });
    }
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const task = this.queue.shift();
      if (!task) return;
      slot.busy = true;
      this.inflight.set(task.id, { task, slot });
      slot.worker.postMessage({ id: task.id, request: task.request } satisfies WorkerRequest);
    }
  }

  generate(request: GenerateRequest): Promise<GenerateResult> {
    if (this.closed) return Promise.reject(new Error("inference pool is closed"));
    const local = this.local;
    if (local) {
      const run = this.localChain.then(() => local.generate(request));
      this.localChain = run.catch(() => undefined);
      return run;
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, request, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * Refuses new and queued requests, lets the running ones finish (up to `graceMs`: terminating a
   * worker while onnxruntime runs in it aborts the whole process), then stops the workers.
   */
  async close(graceMs = 30_000): Promise<void> {
    this.closed = true;
    for (const task of this.queue.splice(0)) task.reject(new Error("inference pool closed"));
    const deadline = Date.now() + graceMs;
    while (this.inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
    if (this.local) await this.local.release();
  }
}
