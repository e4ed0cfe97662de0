/**
 * Checking a published adapter against its base model before it is registered: a corrupt or
 * foreign adapter is refused with a reason and never reaches inference.
 *
 * Checked: the manifest names this base model and carries its content hash (`baseModelSha256`
 * = `base_models.sha256`); the weights file parses as safetensors with float tensors only; every
 * key is a UNet LoRA key of a target in the base model's exported manifest, with A [rank, in] and
 * B [out, rank] shapes that fit it (the same check inference applies, `inference/lora.ts`; a
 * base model with no export yet gets the structural check only); the rank is within
 * ADAPTER_MAX_RANK and agrees with the manifest's.
 */
import { join } from "node:path";
import { exportManifestOf } from "../baseModels/exportLocation.js";
import type { baseModels } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { AdapterMismatchError, type LoraTarget, loadLoraAdapter } from "../inference/lora.js";
import { loraTargets, ModelFormatError, type ModelManifest } from "../inference/model.js";
import { parseSafetensors, SafeTensorsError } from "../inference/safetensors.js";

/** Highest LoRA rank the platform serves (inference cost grows with it). */
export const ADAPTER_MAX_RANK = 64;

export type BaseModel = typeof baseModels.$inferSelect;

/** The fields of an adapter manifest the platform reads (the worker writes more: all kept). */
export interface AdapterManifest {
  adapterId?: string;
  baseModelId?: string;
  baseModelSha256?: string;
  parentAdapterId?: string | null;
  objective?: string;
  space?: string;
  rank?: number;
  alpha?: number;
  datasetSnapshotId?: string;
  metrics?: Record<string, number>;
  [field: string]: unknown;
}

export type Verdict = { ok: true; rank: number } | { ok: false; reason: string };

/** The LoRA targets of the base model's export, or null when there is no export to check against. */
export async function baseModelTargets(
  deps: Pick<Deps, "blobs" | "config">,
  base: BaseModel,
): Promise<LoraTarget[] | null> {
  if (base.onnxUri) {
    try {
      return loraTargets(await exportManifestOf(deps, base.onnxUri));
    } catch (err) {
      if (err instanceof ModelFormatError) return null;
      throw err;
    }
  }
  const modelDir = deps.config.inference.modelDir;
  if (modelDir.startsWith("blob:")) {
    const bytes = await deps.blobs.get(join(modelDir.slice(5), "manifest.json"));
    if (bytes) return loraTargets(JSON.parse(new TextDecoder().decode(bytes)) as ModelManifest);
  }
  return null;
}

const LORA_KEY = /^(unet\.|base_model\.model\.)(.+)\.(lora_A|lora_B)(\.default)?\.weight$/;

/**
 * Without an exported base model to compare with (a base that is trained but not served yet),
 * the file must still be a well-formed UNet LoRA: float tensors, A [rank, in] and B [out, rank]
 * in pairs. Inference checks the shapes against the export when it loads the adapter.
 */
function pairedRanks(adapterId: string, weights: Uint8Array): number[] {
  let file: ReturnType<typeof parseSafetensors>;
  try {
    file = parseSafetensors(weights);
  } catch (err) {
    if (err instanceof SafeTensorsError)
      throw new AdapterMismatchError(`adapter ${adapterId}: ${err.message}`);
    throw err;
  }
  const modules = new Map<string, { a?: number[]; b?: number[] }>();
  for (const [key, t] of file.tensors) {
    const m = LORA_KEY.exec(key);
    if (!m) throw new AdapterMismatchError(`adapter ${adapterId}: key ${key} is not a UNet LoRA key`);
    const entry = modules.get(m[2] as string) ?? {};
    if (m[3] === "lora_A") entry.a = t.shape;
    else entry.b = t.shape;
    modules.set(m[2] as string, entry);
  }
  if (modules.size === 0)
    throw new AdapterMismatchError(`adapter ${adapterId}: the file has no LoRA tensors`);
  return [...modules].map(([module, { a, b }]) => {
    if (!a || !b || a.length !== 2 || b.length !== 2 || a[0] !== b[1])
      throw new AdapterMismatchError(
        `adapter ${adapterId}: module ${module} has lora_A [${a ?? "missing"}] and lora_B [${b ?? "missing"}], not [rank, in] and [out, rank]`,
      );
    return a[0] as number;
  });
}

export function checkAdapter(
  adapterId: string,
  base: BaseModel,
  targets: readonly LoraTarget[] | null,
  manifest: AdapterManifest,
  weights: Uint8Array,
): Verdict {
  const refuse = (reason: string): Verdict => ({ ok: false, reason: `adapter ${adapterId}: ${reason}` });
  if (manifest.baseModelId !== base.id)
    return refuse(`its manifest names base model ${manifest.baseModelId ?? "(none)"}, not ${base.id}`);
  if (!manifest.baseModelSha256)
    return refuse("its manifest carries no baseModelSha256, so the base it was trained on is unknown");
  if (manifest.baseModelSha256 !== base.sha256)
    return refuse(
      `it was trained on a base model with hash ${manifest.baseModelSha256}, but ${base.id} has hash ${base.sha256}`,
    );
  let ranks: number[];
  try {
    ranks = targets
      ? [
          ...loadLoraAdapter(adapterId, weights, targets, {
            alpha: manifest.alpha,
            rank: manifest.rank,
          }).targets.values(),
        ].map((t) => t.rank)
      : pairedRanks(adapterId, weights);
  } catch (err) {
    if (err instanceof AdapterMismatchError) return { ok: false, reason: err.message };
    throw err;
  }
  const rank = Math.max(...ranks);
  if (rank > ADAPTER_MAX_RANK) return refuse(`rank ${rank} is above the limit of ${ADAPTER_MAX_RANK}`);
  if (manifest.rank !== undefined && ranks.some((r) => r !== manifest.rank))
    return refuse(`its manifest says rank ${manifest.rank}, its weights have rank ${rank}`);
  return { ok: true, rank };
}
