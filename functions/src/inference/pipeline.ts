/**
 * The Stable Diffusion text-to-image loop of diffusers' `StableDiffusionPipeline` (SD 1.x/2.x)
 * and `StableDiffusionXLPipeline` (SDXL), on onnxruntime-node: tokenize → text encoder(s) →
 * initial latents from torch-compatible noise → for each timestep: scale, UNet (with the
 * request's LoRA feeds; for SDXL also pooled text embeddings and time ids), classifier-free
 * guidance, scheduler step → VAE decode → RGB bytes. Images that share a LoRA feed set go through
 * the UNet in one batch. `run()` blocks its thread: use this class inside a worker (see pool.ts).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import type { LoraFeeds, LoraTarget } from "./lora.js";
import { loraFeeds } from "./lora.js";
import { loraTargets, type ModelFamily, type ModelManifest, modelFamily, readManifest } from "./model.js";
import { TorchGenerator } from "./noise.js";
import { createSessions, type ExecutionProvider, type ProviderChoice } from "./providers.js";
import { parsePythonJson, roundHalfEven } from "./schedulers/common.js";
import {
  createScheduler,
  type SamplerName,
  type Scheduler,
  type SchedulerConfigJson,
} from "./schedulers/index.js";
import {
  loadTokenizer,
  type PromptEmbedding,
  SdTextEncoder,
  SdxlTextEncoders,
  type TextEncoders,
} from "./textEncoders.js";
import type { ClipTokenizer } from "./tokenizer.js";

const f32 = Math.fround;

type Session = ort.InferenceSession;

/** Latents or the decoded image stopped being finite numbers: the generation failed. */
export class NonFiniteError extends Error {
  override name = "NonFiniteError";
}

export interface ImageRequest {
  prompt: string;
  /**
   * Empty or absent = no negative prompt: "" encoded (SD), or zeros for SDXL models with
   * `force_zeros_for_empty_prompt` (as diffusers with `negative_prompt=None`).
   */
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
  /** SDXL only: the micro-conditioning (default: the image size, no crop). */
  micro?: MicroConditioning;
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

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
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

/** Time ids of SDXL's micro-conditioning: original size, crop top-left, target size. */
export interface MicroConditioning {
  originalSize: [number, number];
  cropTopLeft: [number, number];
  targetSize: [number, number];
}

export class SdPipeline {
  readonly targets: LoraTarget[];
  readonly family: ModelFamily;
  private readonly baseFeeds: LoraFeeds;

  private constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
    readonly text: TextEncoders,
    readonly schedulerConfig: SchedulerConfigJson,
    private readonly unet: ort.InferenceSession,
    private readonly vae: ort.InferenceSession,
    /** Every session, for release. */
    private readonly sessions: Session[],
    /** The execution provider the sessions run on. */
    readonly provider: ProviderChoice,
  ) {
    this.targets = loraTargets(manifest);
    this.baseFeeds = loraFeeds(this.targets, []);
    this.family = modelFamily(manifest);
  }

  static async load(dir: string, opts: PipelineOptions = {}): Promise<SdPipeline> {
    const manifest = await readManifest(dir);
    const family = modelFamily(manifest);
    const tokenizer = await loadTokenizer(dir, manifest.tokenizer);
    const tokenizer2 =
      family === "sdxl" && manifest.tokenizer_2 ? await loadTokenizer(dir, manifest.tokenizer_2) : null;
    // diffusers writes its configs with Python's json (bare -Infinity for lambda_min_clipped).
    const schedulerConfig = parsePythonJson(
      await readFile(join(dir, manifest.scheduler.file), "utf8"),
    ) as SchedulerConfigJson;
    const c = manifest.components;
    const encoderFiles =
      c.text_encoder_2 && tokenizer2 ? [c.text_encoder.file, c.text_encoder_2.file] : [c.text_encoder.file];
    const { sessions, choice } = await createSessions(
      [c.unet.file, c.vae_decoder.file, ...encoderFiles].map((file) => join(dir, file)),
      sessionOptions(opts),
      opts.executionProvider ?? "cpu",
    );
    const [unet, vae, encoder, encoder2] = sessions as [Session, Session, Session, Session | undefined];
    const text =
      tokenizer2 && encoder2
        ? SdxlTextEncoders.fromManifest(manifest, [tokenizer, tokenizer2], [encoder, encoder2])
        : new SdTextEncoder(tokenizer, encoder);
    return new SdPipeline(dir, manifest, text, schedulerConfig, unet, vae, sessions, choice);
  }

  /** The first text encoder's tokenizer. */
  get tokenizer(): ClipTokenizer {
    return this.text.tokenizer;
  }

  get width(): number {
    return this.manifest.image.width;
  }

  get height(): number {
    return this.manifest.image.height;
  }

  async release(): Promise<void> {
    await Promise.all(this.sessions.map((s) => s.release()));
  }

  /** The UNet's text conditioning for each prompt ([max_length, hidden] flattened per prompt). */
  async encodePrompts(prompts: readonly string[]): Promise<Float32Array[]> {
    return (await this.text.encode(prompts)).map((e) => e.hidden);
  }

  /**
   * SDXL's `add_time_ids` row: original (h, w), crop (top, left), target (h, w); by default the
   * image size, no crop, as diffusers' `StableDiffusionXLPipeline` with no size arguments.
   */
  timeIds(micro?: MicroConditioning): Float32Array {
    const { width, height } = this;
    const m = micro ?? { originalSize: [height, width], cropTopLeft: [0, 0], targetSize: [height, width] };
    return Float32Array.from([...m.originalSize, ...m.cropTopLeft, ...m.targetSize]);
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
    /** SDXL: pooled text embeddings [batch, pooled] and time ids [batch, 6]. */
    added?: { textEmbeds: Float32Array; timeIds: Float32Array },
  ) {
    const l = this.manifest.latents;
    const seq = this.text.sequenceLength;
    const first = this.targets[0];
    const ready = lora && first && lora[first.inputA] instanceof ort.Tensor;
    const feeds: Record<string, ort.Tensor> = {
      ...(ready ? (lora as Record<string, ort.Tensor>) : this.loraTensors(lora as LoraFeeds | undefined)),
      sample: new ort.Tensor("float32", sample, [batch, l.channels, l.height, l.width]),
      timestep: new ort.Tensor("float32", new Float32Array(batch).fill(timestep), [batch]),
      encoder_hidden_states: new ort.Tensor("float32", hidden, [batch, seq, hidden.length / batch / seq]),
    };
    if (this.family === "sdxl") {
      if (!added) throw new Error("an SDXL UNet step needs text_embeds and time_ids");
      feeds.text_embeds = new ort.Tensor("float32", added.textEmbeds, [
        batch,
        added.textEmbeds.length / batch,
      ]);
      feeds.time_ids = new ort.Tensor("float32", added.timeIds, [batch, added.timeIds.length / batch]);
    }
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

    // Text: every distinct prompt once; no negative prompt is zeros where the model says so.
    let t0 = performance.now();
    const zeros = this.text.zeroUnconditional();
    const negativeOf = (im: ImageRequest) => im.negativePrompt ?? "";
    const texts = [
      ...new Set(
        req.images.flatMap((im) => {
          const negative = negativeOf(im);
          return cfg && !(zeros && negative === "") ? [negative, im.prompt] : [im.prompt];
        }),
      ),
    ];
    const encoded = await this.text.encode(texts);
    const embedding = new Map(texts.map((text, i) => [text, encoded[i] as PromptEmbedding]));
    const conditioning = (im: ImageRequest, negative: boolean): PromptEmbedding => {
      if (negative && zeros && negativeOf(im) === "") return zeros;
      return embedding.get(negative ? negativeOf(im) : im.prompt) as PromptEmbedding;
    };
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
    const groupAdded = new Map<string, { textEmbeds: Float32Array; timeIds: Float32Array }>();
    const groupLora = new Map<string, Record<string, ort.Tensor>>();
    const timeIds = this.timeIds(req.micro);
    for (const [key, members] of groups) {
      const images = members.map((i) => req.images[i] as ImageRequest);
      // CFG batch: every image's unconditional input first, then every image's prompt.
      const order = cfg
        ? [...images.map((im) => conditioning(im, true)), ...images.map((im) => conditioning(im, false))]
        : images.map((im) => conditioning(im, false));
      groupHidden.set(key, concat(order.map((e) => e.hidden)));
      if (this.family === "sdxl") {
        groupAdded.set(key, {
          textEmbeds: concat(order.map((e) => e.pooled as Float32Array)),
          timeIds: concat(order.map(() => timeIds)),
        });
      }
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
          groupAdded.get(key),
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
