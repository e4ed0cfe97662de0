/**
 * The local platform's base model: the exported ONNX folder at MODEL_DIR is registered in
 * `base_models` at start-up, so the pair pool and the generator have a model to work with.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { baseModelIdOf, familyOf, modelFolderSha256 } from "../baseModels/identity.js";
import { repoRoot } from "../config.js";
import { baseModels } from "../db/schema.js";
import type { Db } from "../platform/db/index.js";

export { baseModelIdOf, familyOf, modelFolderSha256 };

interface ExportManifest {
  format?: string;
  image?: { width?: number; height?: number };
  source?: { model_dir?: string };
}

/**
 * Registers (or refreshes) the base model exported at `modelDir`. Returns its id, or null when
 * the folder holds no export manifest.
 */
export async function registerLocalBaseModel(db: Db, modelDir: string): Promise<string | null> {
  const manifestPath = join(modelDir, "manifest.json");
  if (!existsSync(manifestPath)) return null;
  const text = readFileSync(manifestPath, "utf8");
  const manifest = JSON.parse(text) as ExportManifest;
  const width = manifest.image?.width;
  const height = manifest.image?.height;
  if (!width || !height) throw new Error(`${manifestPath} names no image width and height`);
  const id = baseModelIdOf(modelDir);
  // The hash adapters are checked against: the trained-on diffusers folder's content hash when
  // it is at hand (adapters are trained on it; the ONNX export is made from it), else the manifest's.
  const trainedOn = manifest.source?.model_dir ? resolve(repoRoot, manifest.source.model_dir) : null;
  const row = {
    id,
    name: id,
    family: familyOf(manifest),
    sha256:
      trainedOn && existsSync(join(trainedOn, "model_index.json"))
        ? modelFolderSha256(trainedOn)
        : createHash("sha256").update(text).digest("hex"),
    onnxUri: resolve(modelDir),
    diffusersUri: trainedOn && existsSync(trainedOn) ? trainedOn : (manifest.source?.model_dir ?? null),
    width,
    height,
  };
  await db.orm
    .insert(baseModels)
    .values(row)
    .onConflictDoUpdate({
      target: baseModels.id,
      set: {
        family: row.family,
        sha256: row.sha256,
        onnxUri: row.onnxUri,
        diffusersUri: row.diffusersUri,
        width,
        height,
      },
    });
  return id;
}
