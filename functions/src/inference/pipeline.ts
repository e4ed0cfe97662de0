/**
 * The Stable Diffusion text-to-image loop of diffusers' `StableDiffusionPipeline`, on
 * onnxruntime-node: tokenize → text encoder → initial latents from torch-compatible noise →
 * for each timestep: scale, UNet (with the request's LoRA feeds), classifier-free guidance,
 * scheduler step → VAE decode → RGB bytes. Images that share a LoRA feed set go through the UNet
 * in one batch. `run()` blocks its thread: use this class inside a worker (see pool.ts).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import type { LoraFeeds, LoraTarget } from "./lora.js";
import { loraFeeds } from "./lora.js";
import { loraTargets, type ModelManifest, readManifest } from "./model.js";
import { TorchGenerator } from "./noise.js";
import { createSessions, type ExecutionProvider, type ProviderChoice } from "./providers.js";
import { parsePythonJson, roundHalfEven } from "./schedulers/common.js";
import {
  createScheduler,
  type SamplerName,
  type Scheduler,
  type SchedulerConfigJson,
} from "./schedulers/index.js";
import { ClipTokenizer } from "./tokenizer.js";

const f32 = Math.fround;

type Session = ort.InferenceSession;

/** Latents or the decoded image stopped being finite numbers: the generation failed. */
export class NonFiniteError extends Error {
  override name = "NonFiniteError";
}

export interface ImageRequest {
  prompt: string;
  negativePrompt?: string;
  seed: number;
  /** Which entry of `GenerateRequest.lora` this image uses; images with the same key share UNet batches. */
  loraKey?: string;
}

export interface GenerateRequest {
  images: ImageRequest[];
  sampler: SamplerName;
  steps: number;
  guidance: number;
  /** LoRA feed sets by key; a missing key (or none) = the base model. */
  lora?: Record<string, LoraFeeds>;
  /** Also return the float image in [0, 1] (HWC), as diffusers' `output_type="np"`. */
  returnFloat?: boolean;
}

export interface GeneratedImage {
  width: number;
  height: number;
  /** RGB bytes, row-major, 3 per pixel. */
  rgb: Uint8Array;
  float?: Float32Array;
  latents: Float32Array;
}

export interface GenerateTimings {
  textMs: number;
  unetMs: number;
  unetCalls: number;
  schedulerMs: number;
  vaeMs: number;
  totalMs: number;
}

export interface PipelineOptions {
  /** Threads onnxruntime may use inside one session run. */
  intraOpThreads?: number;
  /** The provider asked for (default `cpu`); `cuda` falls back to `cpu` where CUDA cannot be used. */
  executionProvider?: ExecutionProvider;
}

function sessionOptions(opts: PipelineOptions): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: opts.intraOpThreads ?? 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
  };
}

function assertFinite(data: Float32Array, what: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i] as number)) {
      throw new NonFiniteError(
        `${what} contains ${Number.isNaN(data[i] as number) ? "NaN" : "Inf"} (element ${i})`,
      );
    }
  }
}

export class SdPipeline {
  readonly targets: LoraTarget[];
  private readonly baseFeeds: LoraFeeds;

  private constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
    readonly tokenizer: ClipTokenizer,
    readonly schedulerConfig: SchedulerConfigJson,
    private readonly textEncoder: ort.InferenceSession,
    private readonly unet: ort.InferenceSession,
    private readonly vae: ort.InferenceSession,
    /** The execution provider the sessions run on. */
    readonly provider: ProviderChoice,
  ) {
    this.targets = loraTargets(manifest);
    this.baseFeeds = loraFeeds(this.targets, []);
  }

  static async load(dir: string, opts: PipelineOptions = {}): Promise<SdPipeline> {
    const manifest = await readManifest(dir);
    const t = manifest.tokenizer;
    const tokenizer = await ClipTokenizer.fromFile(join(dir, t.file), {
      maxLength: t.max_length,
      bosTokenId: t.bos_token_id ?? undefined,
      eosTokenId: t.eos_token_id ?? undefined,
      padTokenId: t.pad_token_id ?? undefined,
    });
    // diffusers writes its configs with Python's json (bare -Infinity for lambda_min_clipped).
    const schedulerConfig = parsePythonJson(
      await readFile(join(dir, manifest.scheduler.file), "utf8"),
    ) as SchedulerConfigJson;
    const c = manifest.components;
    const { sessions, choice } = await createSessions(
      [c.text_encoder.file, c.unet.file, c.vae_decoder.file].map((file) => join(dir, file)),
      sessionOptions(opts),
      opts.executionProvider ?? "cpu",
    );
    const [textEncoder, unet, vae] = sessions as [Session, Session, Session];
    return new SdPipeline(dir, manifest, tokenizer, schedulerConfig, textEncoder, unet, vae, choice);
  }

  get width(): number {
    return this.manifest.image.width;
  }

  get height(): number {
    return this.manifest.image.height;
  }

  async release(): Promise<void> {
    await Promise.all([this.textEncoder.release(), this.unet.release(), this.vae.release()]);
  }

  /** `last_hidden_state` for each prompt, [n, max_length, hidden] flattened per prompt. */
  async encodePrompts(prompts: readonly string[]): Promise<Float32Array[]> {
    const ids = this.tokenizer.encodeBatch(prompts);
    const input = new ort.Tensor("int64", ids, [prompts.length, this.tokenizer.maxLength]);
    const out = await this.textEncoder.run({ input_ids: input });
    const hidden = out.last_hidden_state as ort.Tensor;
    const data = hidden.data as Float32Array;
    const per = data.length / prompts.length;
    return prompts.map((_, i) => data.slice(i * per, (i + 1) * per));
  }

  /** The LoRA inputs of the UNet as onnxruntime tensors (rank 0 where the set has no feed). */
  loraTensors(lora?: LoraFeeds): Record<string, ort.Tensor> {
    const set = lora ?? this.baseFeeds;
    const tensors: Record<string, ort.Tensor> = {};
    for (const t of this.targets) {
      const a = set[t.inputA] ?? this.baseFeeds[t.inputA];
      const b = set[t.inputB] ?? this.baseFeeds[t.inputB];
      if (!a || !b) throw new Error(`no LoRA feed for ${t.module}`);
      tensors[t.inputA] = new ort.Tensor("float32", a.data, a.dims);
      tensors[t.inputB] = new ort.Tensor("float32", b.data, b.dims);
    }
    return tensors;
  }

  /**
   * One UNet call: sample [b, c, h, w], one timestep for all, hidden [b, seq, dim], and LoRA
   * feeds (or tensors already made by `loraTensors`, to reuse them across steps).
   */
  async unetStep(
    sample: Float32Array,
    batch: number,
    timestep: number,
    hidden: Float32Array,
    lora?: LoraFeeds | Record<string, ort.Tensor>,
  ) {
    const l = this.manifest.latents;
    const seq = this.tokenizer.maxLength;
    const first = this.targets[0];
    const ready = lora && first && lora[first.inputA] instanceof ort.Tensor;
    const feeds: Record<string, ort.Tensor> = {
      ...(ready ? (lora as Record<string, ort.Tensor>) : this.loraTensors(lora as LoraFeeds | undefined)),
      sample: new ort.Tensor("float32", sample, [batch, l.channels, l.height, l.width]),
      timestep: new ort.Tensor("float32", new Float32Array(batch).fill(timestep), [batch]),
      encoder_hidden_states: new ort.Tensor("float32", hidden, [batch, seq, hidden.length / batch / seq]),
    };
    const out = await this.unet.run(feeds);
    return (out.noise_pred as ort.Tensor).data as Float32Array;
  }

  async generate(req: GenerateRequest): Promise<{ images: GeneratedImage[]; timings: GenerateTimings }> {
    const started = performance.now();
    const timings: GenerateTimings = {
      textMs: 0,
      unetMs: 0,
      unetCalls: 0,
      schedulerMs: 0,
      vaeMs: 0,
      totalMs: 0,
    };
    const n = req.images.length;
    if (n === 0) return { images: [], timings };
    const cfg = req.guidance > 1;
    const l = this.manifest.latents;
    const latentShape = [1, l.channels, l.height, l.width];
    const latentSize = l.channels * l.height * l.width;

    // Text: every distinct prompt once.
    let t0 = performance.now();
    const texts = [
      ...new Set(req.images.flatMap((im) => (cfg ? [im.negativePrompt ?? "", im.prompt] : [im.prompt]))),
    ];
    const encoded = await this.encodePrompts(texts);
    const embedding = new Map(texts.map((text, i) => [text, encoded[i] as Float32Array]));
    timings.textMs = performance.now() - t0;

    // One scheduler and one generator per image (diffusers with a list of generators).
    const schedulers: Scheduler[] = [];
    const generators: TorchGenerator[] = [];
    const latents: Float32Array[] = [];
    for (const im of req.images) {
      const s = createScheduler(req.sampler, this.schedulerConfig);
      s.setTimesteps(req.steps);
      const g = new TorchGenerator(im.seed);
      const noise = g.randn(latentShape);
      const sigma = s.initNoiseSigma;
      latents.push(sigma === 1 ? noise : noise.map((v) => f32(v * sigma)));
      schedulers.push(s);
      generators.push(g);
    }
    const timesteps = (schedulers[0] as Scheduler).timesteps;

    // Batches of images that share LoRA feeds.
    const groups = new Map<string, number[]>();
    req.images.forEach((im, i) => {
      const key = im.loraKey ?? "";
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    const groupHidden = new Map<string, Float32Array>();
    const groupLora = new Map<string, Record<string, ort.Tensor>>();
    const seqSize = (encoded[0] as Float32Array).length;
    for (const [key, members] of groups) {
      const order = cfg
        ? [
            ...members.map((i) => req.images[i]?.negativePrompt ?? ""),
            ...members.map((i) => req.images[i]?.prompt ?? ""),
          ]
        : members.map((i) => req.images[i]?.prompt ?? "");
      const hidden = new Float32Array(order.length * seqSize);
      order.forEach((text, j) => {
        hidden.set(embedding.get(text) as Float32Array, j * seqSize);
      });
      groupHidden.set(key, hidden);
      const lora = key ? req.lora?.[key] : undefined;
      if (key && !lora) throw new Error(`no LoRA feeds for key ${key}`);
      groupLora.set(key, this.loraTensors(lora));
    }

    for (const [stepIndex, t] of timesteps.entries()) {
      for (const [key, members] of groups) {
        const m = members.length;
        const batch = cfg ? 2 * m : m;
        const input = new Float32Array(batch * latentSize);
        t0 = performance.now();
        members.forEach((i, j) => {
          const scaled = (schedulers[i] as Scheduler).scaleModelInput(latents[i] as Float32Array, t);
          input.set(scaled, j * latentSize);
          if (cfg) input.set(scaled, (m + j) * latentSize);
        });
        timings.schedulerMs += performance.now() - t0;
        t0 = performance.now();
        const pred = await this.unetStep(
          input,
          batch,
          t,
          groupHidden.get(key) as Float32Array,
          groupLora.get(key),
        );
        timings.unetMs += performance.now() - t0;
        timings.unetCalls++;
        t0 = performance.now();
        members.forEach((i, j) => {
          let noisePred: Float32Array;
          if (cfg) {
            const g = f32(req.guidance);
            const uncond = pred.subarray(j * latentSize, (j + 1) * latentSize);
            const text = pred.subarray((m + j) * latentSize, (m + j + 1) * latentSize);
            noisePred = new Float32Array(latentSize);
            for (let k = 0; k < latentSize; k++) {
              const u = uncond[k] as number;
              noisePred[k] = f32(u + f32(g * f32((text[k] as number) - u)));
            }
          } else {
            noisePred = pred.slice(j * latentSize, (j + 1) * latentSize);
          }
          const out = (schedulers[i] as Scheduler).step(noisePred, t, latents[i] as Float32Array, {
            shape: latentShape,
            generator: generators[i],
          });
          assertFinite(out.prevSample, `latents of image ${i} after step ${stepIndex} (timestep ${t})`);
          latents[i] = out.prevSample;
        });
        timings.schedulerMs += performance.now() - t0;
      }
    }

    t0 = performance.now();
    const all = new Float32Array(n * latentSize);
    latents.forEach((lat, i) => {
      all.set(lat, i * latentSize);
    });
    const decoded = await this.vae.run({
      latents: new ort.Tensor("float32", all, [n, l.channels, l.height, l.width]),
    });
    const image = (decoded.image as ort.Tensor).data as Float32Array;
    assertFinite(image, "decoded image");
    timings.vaeMs = performance.now() - t0;

    const { width, height } = this;
    const plane = width * height;
    const images: GeneratedImage[] = req.images.map((_, i) => {
      const rgb = new Uint8Array(plane * 3);
      const float = req.returnFloat ? new Float32Array(plane * 3) : undefined;
      const base = i * 3 * plane;
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < plane; p++) {
          // diffusers: (image / 2 + 0.5).clamp(0, 1), then (x * 255).round() to uint8.
          const x = Math.min(1, Math.max(0, f32(f32((image[base + c * plane + p] as number) / 2) + 0.5)));
          if (float) float[p * 3 + c] = x;
          rgb[p * 3 + c] = roundHalfEven(f32(x * 255));
        }
      }
      return { width, height, rgb, float, latents: latents[i] as Float32Array };
    });
    timings.totalMs = performance.now() - started;
    return { images, timings };
  }
}
