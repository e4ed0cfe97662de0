/**
 * The inference service the generator uses: one loaded base model (a worker pool), adapters
 * resolved per request, LoRA feeds built per distinct adapter stack, images encoded with sharp.
 * The two images of a pair that use the same adapter stack share UNet batches.
 */
import type { BlobStore } from "../platform/blob/port.js";
import { type AdapterLookup, AdapterStore } from "./adapters.js";
import { encodeImage, type ImageFormat } from "./image.js";
import { type LoraFeeds, loraFeeds, stackKey } from "./lora.js";
import { loraTargets, type ModelManifest, readManifest, resolveModelDir } from "./model.js";
import type { GenerateTimings } from "./pipeline.js";
import { InferencePool } from "./pool.js";
import type { ExecutionProvider, ProviderChoice } from "./providers.js";
import type { SamplerName } from "./schedulers/index.js";

export interface ImageSpec {
  prompt: string;
  negativePrompt: string;
  seed: number;
  /** Adapters to apply (stacked); empty = the base model. */
  adapters: { adapterId: string; strength: number }[];
}

export interface GenerationParams {
  sampler: SamplerName;
  steps: number;
  guidance: number;
  width: number;
  height: number;
}

export interface EncodedImage {
  bytes: Uint8Array;
  contentType: string;
  width: number;
  height: number;
}

export interface InferenceBackend {
  readonly baseModelId: string;
  /** The onnxruntime execution provider the model runs on, where the backend has one. */
  readonly executionProvider?: ProviderChoice;
  generate(
    images: ImageSpec[],
    params: GenerationParams,
    format?: ImageFormat,
  ): Promise<{ images: EncodedImage[]; timings: GenerateTimings }>;
  close(): Promise<void>;
}

/** The request does not fit the loaded model (size, sampler): generation fails without retries. */
export class InvalidGenerationError extends Error {
  override name = "InvalidGenerationError";
}

export interface InferenceServiceOptions {
  baseModelId: string;
  /** Folder or `blob:<prefix>`. */
  modelSource: string;
  modelCacheDir: string;
  workers: number;
  intraOpThreads: number;
  /** The execution provider asked for (default `cpu`; `cuda` falls back to `cpu` where unavailable). */
  executionProvider?: ExecutionProvider;
  adapterCacheBytes: number;
  blobs: BlobStore;
  lookupAdapter: AdapterLookup;
}

export class InferenceService implements InferenceBackend {
  private constructor(
    readonly baseModelId: string,
    readonly manifest: ModelManifest,
    readonly pool: InferencePool,
    readonly adapters: AdapterStore,
  ) {}

  static async create(opts: InferenceServiceOptions): Promise<InferenceService> {
    const dir = await resolveModelDir(opts.modelSource, { blobs: opts.blobs, cacheDir: opts.modelCacheDir });
    const manifest = await readManifest(dir);
    const pool = await InferencePool.create({
      modelDir: dir,
      workers: opts.workers,
      intraOpThreads: opts.intraOpThreads,
      executionProvider: opts.executionProvider,
    });
    const adapters = new AdapterStore({
      blobs: opts.blobs,
      lookup: opts.lookupAdapter,
      targets: loraTargets(manifest),
      baseModelId: opts.baseModelId,
      maxBytes: opts.adapterCacheBytes,
    });
    return new InferenceService(opts.baseModelId, manifest, pool, adapters);
  }

  get executionProvider(): ProviderChoice {
    return this.pool.provider;
  }

  /** LoRA feeds for each distinct adapter stack of the request, keyed by stack key. */
  async feedsFor(images: readonly ImageSpec[]): Promise<Record<string, LoraFeeds>> {
    const targets = loraTargets(this.manifest);
    const out: Record<string, LoraFeeds> = {};
    for (const im of images) {
      const key = stackKey(im.adapters);
      if (!key || out[key]) continue;
      const stack = [];
      for (const a of im.adapters) {
        if (a.strength === 0) continue;
        stack.push({ adapter: await this.adapters.get(a.adapterId), strength: a.strength });
      }
      out[key] = loraFeeds(targets, stack);
    }
    return out;
  }

  async generate(images: ImageSpec[], params: GenerationParams, format: ImageFormat = "png") {
    const { width, height } = this.manifest.image;
    if (params.width !== width || params.height !== height) {
      throw new InvalidGenerationError(
        `requested ${params.width}x${params.height}, but base model ${this.baseModelId} is exported for ${width}x${height}`,
      );
    }
    const lora = await this.feedsFor(images);
    const result = await this.pool.generate({
      images: images.map((im) => ({
        prompt: im.prompt,
        negativePrompt: im.negativePrompt,
        seed: im.seed,
        loraKey: stackKey(im.adapters) || undefined,
      })),
      sampler: params.sampler,
      steps: params.steps,
      guidance: params.guidance,
      lora,
    });
    const encoded = await Promise.all(
      result.images.map(async (im) => ({
        bytes: await encodeImage(im.rgb, im.width, im.height, format),
        contentType: format === "png" ? "image/png" : "image/webp",
        width: im.width,
        height: im.height,
      })),
    );
    return { images: encoded, timings: result.timings };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
