import { Hono } from "hono";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { decodeComponent } from "../http/inputGuard.js";
import { verifyLocalBlobUrl } from "../platform/blob/fs.js";
import { assertBlobKey } from "../platform/blob/port.js";

const contentTypes: Record<string, string> = {
  png: "image/png",
  webp: "image/webp",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  json: "application/json",
  safetensors: "application/octet-stream",
  parquet: "application/octet-stream",
};

const notFound = () => new ApiError(404, "not_found", "No such file.");

/**
 * The blob key of a `/blobs/<key>` URL: the raw path, percent-decoded exactly once (Hono's
 * `c.req.path` is decoded already; decoding it again turns `%25` into `%` and throws on it).
 * Null when it is not valid percent-encoding or not a key the store accepts.
 */
export function blobKeyOf(url: string): string | null {
  const { pathname } = new URL(url);
  const key = decodeComponent(pathname.replace(/^\/blobs\//, ""));
  if (key === null) return null;
  try {
    assertBlobKey(key);
    return key;
  } catch {
    return null;
  }
}

/** Serves filesystem blobs through signed, expiring URLs (the local stand-in for presigned S3). */
export function blobRoutes(deps: Pick<Deps, "blobs" | "signer">) {
  const app = new Hono();
  app.get("/blobs/*", async (c) => {
    const key = blobKeyOf(c.req.url);
    if (key === null) throw notFound();
    const refused = verifyLocalBlobUrl(deps.signer, key, c.req.query("exp"), c.req.query("sig"));
    if (refused === "expired")
      throw new ApiError(403, "url_expired", "This link has expired; ask for a new one.");
    if (refused) throw new ApiError(403, "bad_signature", "This link is not valid.");
    const body = await deps.blobs.get(key);
    if (!body) throw notFound();
    const ext = key.split(".").pop()?.toLowerCase() ?? "";
    return c.body(body as Uint8Array<ArrayBuffer>, 200, {
      "content-type": contentTypes[ext] ?? "application/octet-stream",
      "cache-control": "private, max-age=300",
      "x-content-type-options": "nosniff",
    });
  });
  return app;
}
