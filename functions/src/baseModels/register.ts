/**
 * Registering a base model from the blob store (a deployment's way; the local server registers
 * MODEL_DIR at start-up, `local/baseModel.ts`): the ONNX export under a blob prefix is checked
 * (its manifest, every file the manifest names), its family and image size come from the
 * manifest, and its content hash (`base_models.sha256`, what adapters are checked against) is
 * given, or computed from the diffusers folder's `checksums.sha256` when that folder is in the
 * blob store too, without downloading any weights.
 *
 * `onnx_uri` is stored in the form the generator reads back (`generator.ts` `modelSource`):
 * `s3://<bucket>/<prefix>` on S3, `blob:<prefix>` on the filesystem blob store; `diffusers_uri`
 * in the form the trainer gets (`s3://...` or `file://...`, `training/runs.ts`).
 */
import { count, eq } from "drizzle-orm";
import { currentChampion } from "../adapters/registry.js";
import { adapters, baseModels } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { ModelFormatError, type ModelManifest, parseManifest } from "../inference/model.js";
import { assertBlobKey } from "../platform/blob/port.js";
import { blobUri } from "../platform/blob/uri.js";
import { blobPrefixOf, exportManifestOf, MANIFEST_FILE, onnxUriOf } from "./exportLocation.js";
import {
  baseModelIdOf,
  CHECKSUMS_FILE,
  ChecksumsError,
  checksumsFolderSha256,
  familyOf,
} from "./identity.js";

export type BaseModel = typeof baseModels.$inferSelect;
type RegisterDeps = Pick<Deps, "db" | "blobs" | "config" | "log">;

export interface RegisterBaseModelInput {
  /** Blob prefix holding the export's manifest.json (`models/sdxl-onnx/`; `blob:` or this bucket's `s3://` URI also taken). */
  onnxPrefix: string;
  /** Where the trainer reads the diffusers folder: `s3://...`, `blob:<prefix>`, `file://...` or a path. */
  diffusersUri?: string | undefined;
  id?: string | undefined;
  name?: string | undefined;
  /** The diffusers folder's content hash (the worker's `model_sha256`), 64 hex digits. */
  sha256?: string | undefined;
}

/** Ids the platform accepts: they end up in adapter ids and blob keys. */
export const BASE_MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const refuse = (code: string, message: string) => new ApiError(422, code, message);

function checkedPrefix(prefix: string, field: string): string {
  try {
    assertBlobKey(`${prefix}${MANIFEST_FILE}`);
  } catch {
    throw refuse("invalid_prefix", `${field} ${JSON.stringify(prefix)} is not a usable blob prefix.`);
  }
  return prefix;
}

/** The files a manifest names, relative to its folder. */
export function manifestFiles(manifest: ModelManifest): string[] {
  const files = new Set<string>();
  for (const part of Object.values(manifest.components ?? {})) {
    if (part?.file) files.add(part.file);
    if (part?.external_data) files.add(part.external_data);
  }
  if (manifest.tokenizer?.file) files.add(manifest.tokenizer.file);
  if (manifest.tokenizer_2?.file) files.add(manifest.tokenizer_2.file);
  if (manifest.scheduler?.file) files.add(manifest.scheduler.file);
  return [...files].map((f) => f.replace(/^\.\//, "")).sort();
}

/** Reads and checks the export under `prefix`: its manifest, and that every file it names is there. */
async function checkExport(deps: RegisterDeps, prefix: string): Promise<ModelManifest> {
  const key = `${prefix}${MANIFEST_FILE}`;
  const bytes = await deps.blobs.get(key);
  if (!bytes)
    throw refuse(
      "no_manifest",
      `There is no ${MANIFEST_FILE} under blob prefix ${prefix}: upload the whole folder the worker's export-onnx wrote.`,
    );
  let manifest: ModelManifest;
  try {
    manifest = parseManifest(new TextDecoder().decode(bytes), `blob ${key}`);
  } catch (err) {
    if (err instanceof ModelFormatError) throw refuse("bad_manifest", `${err.message}.`);
    throw err;
  }
  const { width, height } = manifest.image ?? {};
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw refuse("bad_manifest", `model manifest blob ${key} names no image width and height.`);
  const present = new Set(await deps.blobs.list(prefix));
  const missing = manifestFiles(manifest).filter((f) => !present.has(`${prefix}${f}`));
  if (missing.length > 0)
    throw refuse(
      "missing_files",
      `The export under ${prefix} is incomplete: its manifest names ${missing.join(", ")}, which ${missing.length === 1 ? "is" : "are"} not in the blob store.`,
    );
  return manifest;
}

const SHA256_HINT =
  "Pass sha256: the diffusers folder's content hash, which the worker prints with " +
  `python -c "from prefloop_worker.train.model import model_sha256; print(model_sha256('<folder>'))"` +
  ", or upload the folder with its checksums.sha256 (python -m prefloop_worker checksums <folder> --write) and give its blob prefix as diffusersUri.";

/** The diffusers folder's content hash from its checksums file in the blob store. */
async function diffusersSha256(deps: RegisterDeps, prefix: string): Promise<string> {
  const key = `${prefix}${CHECKSUMS_FILE}`;
  const checksums = await deps.blobs.get(key);
  if (!checksums)
    throw refuse(
      "sha256_unknown",
      `The diffusers folder under ${prefix} has no ${CHECKSUMS_FILE}, so its content hash cannot be computed here. ${SHA256_HINT}`,
    );
  const present = (await deps.blobs.list(prefix)).map((k) => k.slice(prefix.length));
  if (!present.includes("model_index.json"))
    throw refuse(
      "not_a_diffusers_folder",
      `There is no model_index.json under ${prefix}: diffusersUri must name a diffusers pipeline folder.`,
    );
  try {
    return checksumsFolderSha256(checksums, present, `blob ${key}`);
  } catch (err) {
    if (err instanceof ChecksumsError) throw refuse("sha256_unknown", `${err.message}. ${SHA256_HINT}`);
    throw err;
  }
}

/**
 * Registers the base model exported under `input.onnxPrefix`, or updates it when its id is
 * registered already. Refused (422, nothing written) when the export or the hash cannot be
 * checked; refused (409) when adapters of that id exist and the hash would change under them.
 */
export async function registerBaseModel(
  deps: RegisterDeps,
  input: RegisterBaseModelInput,
): Promise<{ baseModel: BaseModel; created: boolean }> {
  const onnxPrefix = blobPrefixOf(deps.config, input.onnxPrefix.trim(), { bare: true });
  if (!onnxPrefix)
    throw refuse(
      "invalid_prefix",
      `onnxPrefix ${JSON.stringify(input.onnxPrefix)} is not a folder of this deployment's blob store.`,
    );
  checkedPrefix(onnxPrefix, "onnxPrefix");
  const id = input.id ?? baseModelIdOf(onnxPrefix);
  if (!BASE_MODEL_ID.test(id))
    throw refuse(
      "invalid_id",
      `${JSON.stringify(id)} cannot be a base model id (letters, digits, '.', '_' and '-', at most 128): pass id.`,
    );
  const manifest = await checkExport(deps, onnxPrefix);

  const diffusers = input.diffusersUri?.trim() || null;
  const diffusersPrefix = diffusers ? blobPrefixOf(deps.config, diffusers, { bare: false }) : null;
  if (diffusersPrefix) checkedPrefix(diffusersPrefix, "diffusersUri");
  let sha256: string;
  if (input.sha256) {
    if (!/^[0-9a-fA-F]{64}$/.test(input.sha256))
      throw refuse("invalid_sha256", "sha256 must be 64 hexadecimal digits.");
    sha256 = input.sha256.toLowerCase();
  } else if (diffusersPrefix) {
    sha256 = await diffusersSha256(deps, diffusersPrefix);
  } else {
    throw refuse(
      "sha256_unknown",
      diffusers
        ? `diffusersUri ${diffusers} is not in this deployment's blob store, so its content hash cannot be computed here. ${SHA256_HINT}`
        : `Neither sha256 nor diffusersUri was given, so the model's content hash is unknown. ${SHA256_HINT}`,
    );
  }

  const row = {
    id,
    name: input.name?.trim() || id,
    family: familyOf(manifest),
    sha256,
    onnxUri: onnxUriOf(deps.config, onnxPrefix),
    // the trainer gets file:// or s3:// URIs; a blob prefix becomes this store's URI
    diffusersUri: diffusersPrefix ? blobUri(deps.config.blob, diffusersPrefix) : diffusers,
    width: manifest.image.width,
    height: manifest.image.height,
  };
  const out = await deps.db.orm.transaction(async (tx) => {
    const [existing] = await tx.select().from(baseModels).where(eq(baseModels.id, id)).for("update");
    if (existing && existing.sha256 !== sha256) {
      const [n] = await tx.select({ n: count() }).from(adapters).where(eq(adapters.baseModelId, id));
      if ((n?.n ?? 0) > 0)
        throw new ApiError(
          409,
          "sha256_conflict",
          `Base model ${id} has ${n?.n} adapter(s) trained on the model with hash ${existing.sha256}; registering hash ${sha256} under the same id would orphan them. Register the new model under another id.`,
        );
    }
    const [saved] = await tx
      .insert(baseModels)
      .values(row)
      .onConflictDoUpdate({
        target: baseModels.id,
        set: {
          name: row.name,
          family: row.family,
          sha256: row.sha256,
          onnxUri: row.onnxUri,
          diffusersUri: row.diffusersUri,
          width: row.width,
          height: row.height,
        },
      })
      .returning();
    return { baseModel: saved as BaseModel, created: !existing };
  });
  deps.log.info("base model registered", {
    baseModelId: id,
    family: row.family,
    onnxUri: row.onnxUri,
    created: out.created,
  });
  return out;
}

export async function listBaseModels(db: Deps["db"]): Promise<BaseModel[]> {
  return db.orm.select().from(baseModels).orderBy(baseModels.createdAt, baseModels.id);
}

export async function findBaseModel(db: Deps["db"], id: string): Promise<BaseModel | null> {
  const [row] = await db.orm.select().from(baseModels).where(eq(baseModels.id, id));
  return row ?? null;
}

/** A base model's export at a glance, with its champion adapter. */
export async function baseModelSummary(
  deps: Pick<Deps, "db" | "blobs" | "config">,
  base: BaseModel,
): Promise<{
  manifest: { format: string; family: string; width: number; height: number; loraTargets: number } | null;
  manifestError: string | null;
  championAdapterId: string | null;
  adapterCount: number;
}> {
  const [champion, [n]] = await Promise.all([
    currentChampion(deps.db, base.id),
    deps.db.orm.select({ n: count() }).from(adapters).where(eq(adapters.baseModelId, base.id)),
  ]);
  let manifest = null;
  let manifestError: string | null = null;
  if (!base.onnxUri) manifestError = "the base model has no ONNX export registered";
  else {
    try {
      const m = await exportManifestOf(deps, base.onnxUri);
      manifest = {
        format: m.format,
        family: familyOf(m),
        width: m.image.width,
        height: m.image.height,
        loraTargets: m.lora.targets.length,
      };
    } catch (err) {
      if (!(err instanceof ModelFormatError)) throw err;
      manifestError = err.message;
    }
  }
  return { manifest, manifestError, championAdapterId: champion?.id ?? null, adapterCount: n?.n ?? 0 };
}
