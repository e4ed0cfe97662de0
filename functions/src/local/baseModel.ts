/**
 * The local platform's base model: the exported ONNX folder at MODEL_DIR is registered in
 * `base_models` at start-up, so the pair pool and the generator have a model to work with.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join, relative, resolve, sep } from "node:path";
import { repoRoot } from "../config.js";
import { baseModels } from "../db/schema.js";
import { SDXL_MODEL_FORMAT } from "../inference/model.js";
import type { Db } from "../platform/db/index.js";

/** `base_models.family` of an export: the pipeline family it was exported from. */
export function familyOf(manifest: { format?: string }): "stable-diffusion" | "stable-diffusion-xl" {
  return manifest.format === SDXL_MODEL_FORMAT ? "stable-diffusion-xl" : "stable-diffusion";
}

interface ExportManifest {
  format?: string;
  image?: { width?: number; height?: number };
  source?: { model_dir?: string };
}

/** The id a model folder is registered under: its name, without the `-onnx` suffix. */
export function baseModelIdOf(modelDir: string): string {
  return basename(resolve(modelDir)).replace(/-onnx$/, "");
}

/**
 * Content hash of a model folder, the worker's convention (`model_sha256`, written into every
 * adapter manifest as `baseModelSha256`): sha256 over sorted `relpath\0sha256(file)\n` lines,
 * dot-files left out.
 */
export function modelFolderSha256(dir: string): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) files.push(relative(dir, full).split(sep).join("/"));
    }
  };
  walk(dir);
  const outer = createHash("sha256");
  for (const rel of files.filter((f) => !f.startsWith(".") && !f.includes("/.")).sort()) {
    const inner = createHash("sha256")
      .update(readFileSync(join(dir, rel)))
      .digest("hex");
    outer.update(`${rel}\0${inner}\n`);
  }
  return outer.digest("hex");
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
