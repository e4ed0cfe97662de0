/**
 * Where a base model's ONNX export lives and how to read its manifest: a prefix of this
 * deployment's blob store (`blob:<prefix>`, its `s3://` bucket, or `file://` under the filesystem
 * store's folder) or a local folder. Shared by registration (`register.ts`), the adapter checks
 * (`adapters/validate.ts`) and anything else that needs a registered model's export.
 */
import type { Deps } from "../deps.js";
import { ModelFormatError, type ModelManifest, parseManifest, readManifest } from "../inference/model.js";
import { blobKeyFromUri } from "../platform/blob/uri.js";

export const MANIFEST_FILE = "manifest.json";

/**
 * The blob prefix (`a/b/`) that `location` names: `blob:<prefix>`, a URI of this store
 * (`s3://<its bucket>/...`, or `file://` under the filesystem store's folder) or, when `bare`
 * is set, a prefix as is. Null when it names another place (another bucket, a local path).
 */
export function blobPrefixOf(
  config: Pick<Deps["config"], "blob">,
  location: string,
  opts: { bare: boolean },
): string | null {
  let key: string | null;
  if (location.startsWith("blob:")) key = location.slice(5);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    try {
      key = blobKeyFromUri(config.blob, location);
    } catch {
      key = null; // broken percent-encoding: not a URI of this store
    }
  } else key = opts.bare && !location.startsWith("/") ? location : null;
  if (key === null) return null;
  key = key.replace(/^\/+/, "").replace(/\/*$/, "/");
  return key === "/" ? null : key;
}

/** How `base_models.onnx_uri` names an export under a blob prefix of this deployment's store. */
export function onnxUriOf(config: Pick<Deps["config"], "blob">, prefix: string): string {
  return config.blob.backend === "s3" ? `s3://${config.blob.bucket}/${prefix}` : `blob:${prefix}`;
}

/**
 * The export manifest of a registered base model, wherever its `onnx_uri` points: this blob
 * store (`blob:` or its `s3://` bucket), a `file://` URI or a local folder. Throws
 * ModelFormatError when it cannot be read or is not an export manifest.
 */
export async function exportManifestOf(
  deps: Pick<Deps, "blobs" | "config">,
  onnxUri: string,
): Promise<ModelManifest> {
  const prefix =
    onnxUri.startsWith("blob:") || onnxUri.startsWith("s3://")
      ? blobPrefixOf(deps.config, onnxUri, { bare: false })
      : null;
  if (prefix) {
    const key = `${prefix}${MANIFEST_FILE}`;
    const bytes = await deps.blobs.get(key);
    if (!bytes) throw new ModelFormatError(`there is no ${MANIFEST_FILE} under blob prefix ${prefix}`);
    return parseManifest(new TextDecoder().decode(bytes), `blob ${key}`);
  }
  if (onnxUri.includes("://") && !onnxUri.startsWith("file://"))
    throw new ModelFormatError(`${onnxUri} is not in this deployment's blob store`);
  return readManifest(
    onnxUri.startsWith("file://") ? decodeURIComponent(new URL(onnxUri).pathname) : onnxUri,
  );
}
