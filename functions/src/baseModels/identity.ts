/**
 * What identifies a base model: its id (the export folder's name), its family (from the export
 * manifest's format) and its content hash, the worker's convention (`model_sha256` in
 * gpu-worker/src/prefloop_worker/train/model.py, written into every adapter manifest as
 * `baseModelSha256`): sha256 over sorted `relpath\0sha256(file)\n` lines, dot-files left out.
 *
 * The hash is computed from the files on disk (`modelFolderSha256`) or, for a folder in the blob
 * store, from its `checksums.sha256` (`checksumsFolderSha256`) without downloading the weights.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join, relative, resolve, sep } from "node:path";
import { SDXL_MODEL_FORMAT } from "../inference/model.js";

/** The checksums file the worker's `checksums --write` puts in a model folder (sha256sum format). */
export const CHECKSUMS_FILE = "checksums.sha256";

/** `base_models.family` of an export: the pipeline family it was exported from. */
export function familyOf(manifest: { format?: string }): "stable-diffusion" | "stable-diffusion-xl" {
  return manifest.format === SDXL_MODEL_FORMAT ? "stable-diffusion-xl" : "stable-diffusion";
}

/** The id a model folder (or blob prefix) is registered under: its name, without the `-onnx` suffix. */
export function baseModelIdOf(modelDir: string): string {
  return basename(resolve(modelDir)).replace(/-onnx$/, "");
}

/** Whether the folder hash leaves the file out: a dot-file, or a file in a dot-folder. */
export function isHidden(relPath: string): boolean {
  return relPath.startsWith(".") || relPath.includes("/.");
}

function compareCodePoints(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0) ?? 0);
  const y = Array.from(b, (c) => c.codePointAt(0) ?? 0);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] as number) - (y[i] as number);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/**
 * The order the worker's `sorted(Path)` puts relative paths in: segment by segment, each compared
 * by code point (so `unet/x` comes before `unet.json`, unlike a plain string sort).
 */
export function comparePaths(a: string, b: string): number {
  const x = a.split("/");
  const y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = compareCodePoints(x[i] as string, y[i] as string);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/**
 * The folder hash from each file's relative path (`/`-separated) and sha256: hidden files left
 * out, lines in the worker's path order (`comparePaths`).
 */
export function folderSha256(files: Iterable<{ path: string; sha256: string }>): string {
  const outer = createHash("sha256");
  const kept = [...files].filter((f) => !isHidden(f.path));
  kept.sort((a, b) => comparePaths(a.path, b.path));
  for (const f of kept) outer.update(`${f.path}\0${f.sha256}\n`);
  return outer.digest("hex");
}

/** Content hash of a model folder on disk (reads every file). */
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
  return folderSha256(
    files
      .filter((path) => !isHidden(path))
      .map((path) => ({
        path,
        sha256: createHash("sha256")
          .update(readFileSync(join(dir, path)))
          .digest("hex"),
      })),
  );
}

export class ChecksumsError extends Error {
  override name = "ChecksumsError";
}

/** The lines of a `checksums.sha256` file: path → sha256. */
export function parseChecksums(text: string, where: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.replace(/\r$/, "");
    if (!line.trim()) continue;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new ChecksumsError(`${where} line ${i + 1} is not "<sha256>  <path>"`);
    const path = (m[2] as string).replace(/^\.\//, "");
    if (out.has(path)) throw new ChecksumsError(`${where} lists ${path} twice`);
    out.set(path, (m[1] as string).toLowerCase());
  }
  return out;
}

/**
 * Content hash of a model folder from its `checksums.sha256` (the file's own bytes and the list
 * of the folder's other files): equal to `modelFolderSha256` of the same folder, provided the
 * list names exactly the files present. `present` is every file in the folder, relative paths;
 * a file present but not listed, or listed but absent, is refused (the hash would not be the
 * folder's).
 */
export function checksumsFolderSha256(
  checksums: Uint8Array,
  present: Iterable<string>,
  where: string,
): string {
  const listed = parseChecksums(new TextDecoder().decode(checksums), where);
  const files = new Set([...present].filter((p) => p !== CHECKSUMS_FILE && !isHidden(p)));
  const unlisted = [...files].filter((p) => !listed.has(p)).sort();
  const listedVisible = [...listed.keys()].filter((p) => p !== CHECKSUMS_FILE && !isHidden(p));
  const missing = listedVisible.filter((p) => !files.has(p)).sort();
  if (unlisted.length > 0 || missing.length > 0) {
    const say = (label: string, paths: string[]) =>
      paths.length > 0
        ? `${label} ${paths.slice(0, 5).join(", ")}${paths.length > 5 ? ` and ${paths.length - 5} more` : ""}`
        : null;
    throw new ChecksumsError(
      `${where} does not match the folder (${[
        say("not listed:", unlisted),
        say("listed but absent:", missing),
      ]
        .filter(Boolean)
        .join("; ")})`,
    );
  }
  return folderSha256([
    ...listedVisible.map((path) => ({ path, sha256: listed.get(path) as string })),
    { path: CHECKSUMS_FILE, sha256: createHash("sha256").update(checksums).digest("hex") },
  ]);
}
