/**
 * An exported base model folder, written by the worker's ONNX exporter: `prefloop-onnx-sd/1`
 * (Stable Diffusion 1.x/2.x: manifest.json, text_encoder/, unet/, vae_decoder/, tokenizer/,
 * scheduler/) or `prefloop-onnx-sdxl/1` (SDXL: also text_encoder_2/ and tokenizer_2/, a UNet that
 * takes pooled text embeddings and time ids). Read from a local folder, or copied once from a
 * blob-store prefix into a local cache folder.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { BlobStore } from "../platform/blob/port.js";
import type { LoraTarget } from "./lora.js";

export const MODEL_FORMAT = "prefloop-onnx-sd/1";
export const SDXL_MODEL_FORMAT = "prefloop-onnx-sdxl/1";
const FORMATS = [MODEL_FORMAT, SDXL_MODEL_FORMAT];

/** The pipeline family a manifest describes. */
export type ModelFamily = "sd" | "sdxl";

interface ManifestComponent {
  file: string;
  /** The weights of a model over 2 GB, next to its file (`<file>.data`). */
  external_data?: string | null;
  inputs?: Record<string, { dtype: string; shape: (number | string)[] }>;
  outputs?: Record<string, { dtype: string; shape: (number | string)[] }>;
  prediction_type?: string | null;
}

export interface TokenizerManifest {
  file: string;
  max_length: number;
  bos_token_id: number | null;
  eos_token_id: number | null;
  pad_token_id: number | null;
}

export interface ModelManifest {
  format: string;
  image: { height: number; width: number };
  latents: {
    channels: number;
    height: number;
    width: number;
    vae_scale_factor: number;
    vae_scaling_factor: number;
  };
  components: {
    text_encoder: ManifestComponent;
    /** SDXL only: the second (projection) text encoder. */
    text_encoder_2?: ManifestComponent;
    unet: ManifestComponent;
    vae_decoder: ManifestComponent;
  };
  tokenizer: TokenizerManifest;
  /** SDXL only. */
  tokenizer_2?: TokenizerManifest;
  /** SDXL only: the unconditional input of guidance is zeros when there is no negative prompt. */
  force_zeros_for_empty_prompt?: boolean;
  scheduler: { file: string; class?: string | null };
  lora: {
    targets: {
      module: string;
      input_a: string;
      input_b: string;
      key_a: string;
      key_b: string;
      shape_a: (number | string)[];
      shape_b: (number | string)[];
    }[];
  };
}

export class ModelFormatError extends Error {
  override name = "ModelFormatError";
}

/** Reads and checks `manifest.json` of an exported model folder. */
export async function readManifest(dir: string): Promise<ModelManifest> {
  const path = join(dir, "manifest.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ModelFormatError(`cannot read the model manifest ${path}: ${(err as Error).message}`);
  }
  return parseManifest(text, path);
}

/**
 * Checks the text of an export manifest (`where` names it in messages: a path or a blob key):
 * a known format, the components and tokenizers of its family, LoRA targets.
 */
export function parseManifest(text: string, where: string): ModelManifest {
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse(text) as ModelManifest;
  } catch (err) {
    throw new ModelFormatError(`cannot read the model manifest ${where}: ${(err as Error).message}`);
  }
  if (typeof manifest !== "object" || manifest === null || Array.isArray(manifest)) {
    throw new ModelFormatError(`model manifest ${where} is not a JSON object`);
  }
  if (!FORMATS.includes(manifest.format)) {
    throw new ModelFormatError(
      `model manifest ${where} has format ${JSON.stringify(manifest.format)}, expected one of ${FORMATS.join(", ")}`,
    );
  }
  const sdxl = manifest.format === SDXL_MODEL_FORMAT;
  const parts = sdxl
    ? (["text_encoder", "text_encoder_2", "unet", "vae_decoder"] as const)
    : (["text_encoder", "unet", "vae_decoder"] as const);
  for (const part of parts) {
    if (!manifest.components?.[part]?.file)
      throw new ModelFormatError(`model manifest ${where} has no ${part} component`);
  }
  if (!manifest.tokenizer?.file) throw new ModelFormatError(`model manifest ${where} has no tokenizer`);
  if (sdxl && !manifest.tokenizer_2?.file)
    throw new ModelFormatError(`model manifest ${where} is SDXL but has no tokenizer_2`);
  if (!manifest.lora?.targets) throw new ModelFormatError(`model manifest ${where} has no lora.targets`);
  return manifest;
}

export function modelFamily(manifest: ModelManifest): ModelFamily {
  return manifest.format === SDXL_MODEL_FORMAT ? "sdxl" : "sd";
}

/** The manifest's LoRA targets with their feature sizes. */
export function loraTargets(manifest: ModelManifest): LoraTarget[] {
  return manifest.lora.targets.map((t) => ({
    module: t.module,
    inputA: t.input_a,
    inputB: t.input_b,
    keyA: t.key_a,
    keyB: t.key_b,
    inFeatures: Number(t.shape_a[1]),
    outFeatures: Number(t.shape_b[0]),
  }));
}

/**
 * A local folder holding the model: `source` itself when it is a folder path, or for a blob
 * prefix (`blob:<prefix>`) a copy under `cacheDir` made once (files first, manifest last, so a
 * folder with a manifest is complete).
 */
export async function resolveModelDir(
  source: string,
  opts: { blobs?: BlobStore; cacheDir: string },
): Promise<string> {
  if (!source.startsWith("blob:")) return source;
  const prefix = source.slice(5).replace(/\/?$/, "/");
  if (!opts.blobs) throw new Error(`model ${source} is in the blob store but no blob store was given`);
  const local = join(opts.cacheDir, prefix.replace(/[^A-Za-z0-9._-]+/g, "_"));
  if (existsSync(join(local, "manifest.json"))) return local;
  const keys = await opts.blobs.list(prefix);
  if (!keys.includes(`${prefix}manifest.json`))
    throw new ModelFormatError(`no manifest.json under blob prefix ${prefix}`);
  const ordered = [...keys.filter((k) => !k.endsWith("/manifest.json")), `${prefix}manifest.json`];
  for (const key of ordered) {
    const bytes = await opts.blobs.get(key);
    if (!bytes) throw new ModelFormatError(`blob ${key} disappeared while copying the model`);
    const path = join(local, key.slice(prefix.length));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(`${path}.tmp`, bytes);
    await rename(`${path}.tmp`, path);
  }
  return local;
}
