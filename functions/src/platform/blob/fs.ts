import { randomUUID } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { Signer } from "../signing.js";
import { assertBlobKey, type BlobStore } from "./port.js";

/**
 * Blobs as files under `root`. Signed URLs point at the app's `/blobs/*` route, which checks
 * the signature and expiry with `verifyLocalBlobUrl` before serving the file.
 */
export function fsBlobStore(opts: {
  root: string;
  publicUrl: string;
  signer: Signer;
  defaultTtlSeconds: number;
}): BlobStore {
  const { root, signer } = opts;
  const pathOf = (key: string) => {
    assertBlobKey(key);
    return join(root, ...key.split("/"));
  };
  return {
    kind: "fs",
    async put(key, body) {
      const path = pathOf(key);
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${randomUUID()}.tmp`;
      await writeFile(tmp, body);
      await rename(tmp, path);
    },
    async putFile(key, file) {
      const path = pathOf(key);
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${randomUUID()}.tmp`;
      await copyFile(file, tmp);
      await rename(tmp, path);
    },
    async get(key) {
      try {
        return new Uint8Array(await readFile(pathOf(key)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw err;
      }
    },
    async exists(key) {
      try {
        return (await stat(pathOf(key))).isFile();
      } catch {
        return false;
      }
    },
    async delete(key) {
      await rm(pathOf(key), { force: true });
    },
    async list(prefix) {
      const out: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        let entries: import("node:fs").Dirent[];
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch {
          return;
        }
        for (const entry of entries) {
          const full = join(dir, entry.name);
          if (entry.isDirectory()) await walk(full);
          else if (!entry.name.endsWith(".tmp")) out.push(relative(root, full).split(sep).join("/"));
        }
      };
      await walk(root);
      return out.filter((k) => k.startsWith(prefix)).sort();
    },
    async signedUrl(key, o) {
      assertBlobKey(key);
      const exp = Math.floor(Date.now() / 1000) + (o?.expiresInSeconds ?? opts.defaultTtlSeconds);
      const sig = signer.sign(`blob:${key}:${exp}`);
      return `${opts.publicUrl}/blobs/${key}?exp=${exp}&sig=${sig}`;
    },
    async ping() {
      await mkdir(root, { recursive: true });
      const probe = join(root, `.ping-${randomUUID()}`);
      await writeFile(probe, "ok");
      await rm(probe);
    },
  };
}

/** Checks a local signed blob URL's signature and expiry; returns why it is refused, or null. */
export function verifyLocalBlobUrl(
  signer: Signer,
  key: string,
  exp: string | undefined,
  sig: string | undefined,
  nowSeconds = Math.floor(Date.now() / 1000),
): "missing" | "expired" | "bad-signature" | null {
  if (!exp || !sig || !/^\d+$/.test(exp)) return "missing";
  if (!signer.verify(`blob:${key}:${exp}`, sig)) return "bad-signature";
  if (Number(exp) < nowSeconds) return "expired";
  return null;
}
