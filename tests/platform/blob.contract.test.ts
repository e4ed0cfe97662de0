import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobRoutes } from "../../functions/src/api/blobs.js";
import { installErrorHandlers } from "../../functions/src/http/errors.js";
import { fsBlobStore, verifyLocalBlobUrl } from "../../functions/src/platform/blob/fs.js";
import type { BlobStore } from "../../functions/src/platform/blob/port.js";
import { s3BlobStore } from "../../functions/src/platform/blob/s3.js";
import { jsonLogger } from "../../functions/src/platform/log.js";
import { Signer } from "../../functions/src/platform/signing.js";
import { startMoto } from "../helpers/moto.js";

interface Harness {
  blobs: BlobStore;
  /** GETs a signed URL the way a browser would. */
  fetchSigned(url: string): Promise<Response>;
  /** The emulator does not check presigned signatures (S3 itself does); the fs route must. */
  enforcesSignatures: boolean;
  close(): Promise<void>;
}

async function fsHarness(): Promise<Harness> {
  const root = mkdtempSync(join(tmpdir(), "prefloop-blobs-"));
  const signer = new Signer("x".repeat(40));
  const blobs = fsBlobStore({ root, publicUrl: "http://local.test", signer, defaultTtlSeconds: 60 });
  const routes = installErrorHandlers(
    new Hono().route("/", blobRoutes({ blobs, signer })),
    jsonLogger("error"),
  );
  return {
    blobs,
    enforcesSignatures: true,
    fetchSigned: async (url) => routes.request(url.replace("http://local.test", "")),
    close: async () => rmSync(root, { recursive: true, force: true }),
  };
}

async function s3Harness(): Promise<Harness> {
  const moto = await startMoto();
  const client = new S3Client({ region: "us-east-1", endpoint: moto.endpoint, forcePathStyle: true });
  await client.send(new CreateBucketCommand({ Bucket: "prefloop-test" }));
  const blobs = s3BlobStore({ bucket: "prefloop-test", region: "us-east-1", defaultTtlSeconds: 60, client });
  return {
    blobs,
    enforcesSignatures: false,
    fetchSigned: (url) => fetch(url),
    close: async () => {
      client.destroy();
      await moto.stop();
    },
  };
}

describe.each([
  ["filesystem", fsHarness],
  ["S3 on the emulator", s3Harness],
] as const)("BlobStore contract: %s", (_name, make) => {
  let h: Harness;
  beforeAll(async () => {
    h = await make();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("round-trips bytes and reports existence", async () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    expect(await h.blobs.exists("a/b/c.bin")).toBe(false);
    expect(await h.blobs.get("a/b/c.bin")).toBeNull();
    await h.blobs.put("a/b/c.bin", bytes);
    expect(await h.blobs.exists("a/b/c.bin")).toBe(true);
    expect(Array.from((await h.blobs.get("a/b/c.bin")) ?? [])).toEqual([0, 1, 2, 250, 255]);
  });

  it("stores a local file as an object (streamed)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "prefloop-putfile-"));
    try {
      const bytes = new Uint8Array(300_000).map((_, i) => (i * 31) % 251);
      writeFileSync(join(dir, "f.bin"), bytes);
      await h.blobs.putFile("files/f.bin", join(dir, "f.bin"));
      expect(Buffer.from((await h.blobs.get("files/f.bin")) ?? []).equals(Buffer.from(bytes))).toBe(true);
      await expect(h.blobs.putFile("../x", join(dir, "f.bin"))).rejects.toThrow(/invalid blob key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("overwrites whole objects and deletes idempotently", async () => {
    await h.blobs.put("over/x.txt", new TextEncoder().encode("first version"));
    await h.blobs.put("over/x.txt", new TextEncoder().encode("2nd"));
    expect(new TextDecoder().decode((await h.blobs.get("over/x.txt")) ?? new Uint8Array())).toBe("2nd");
    await h.blobs.delete("over/x.txt");
    await h.blobs.delete("over/x.txt");
    expect(await h.blobs.exists("over/x.txt")).toBe(false);
  });

  it("lists keys under a prefix, sorted", async () => {
    for (const k of ["list/b.png", "list/a.png", "list/sub/c.png", "other/d.png"]) {
      await h.blobs.put(k, new Uint8Array([1]));
    }
    expect(await h.blobs.list("list/")).toEqual(["list/a.png", "list/b.png", "list/sub/c.png"]);
  });

  it("serves an object through a signed URL and refuses a tampered one", async () => {
    await h.blobs.put("img/p.png", new Uint8Array([137, 80, 78, 71]), { contentType: "image/png" });
    const url = await h.blobs.signedUrl("img/p.png", { expiresInSeconds: 60 });
    const ok = await h.fetchSigned(url);
    expect(ok.status).toBe(200);
    expect(Array.from(new Uint8Array(await ok.arrayBuffer()))).toEqual([137, 80, 78, 71]);
    if (!h.enforcesSignatures) {
      const q = new URL(url).searchParams;
      expect(q.get("X-Amz-Expires")).toBe("60");
      expect(q.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
      return;
    }
    const tampered = url.replace(
      /(sig=|Signature=)([A-Za-z0-9_-])/,
      (_m, p, ch) => `${p}${ch === "A" ? "B" : "A"}`,
    );
    expect(tampered).not.toBe(url);
    expect((await h.fetchSigned(tampered)).status).toBe(403);
  });

  it("rejects keys that could escape the store", async () => {
    await expect(h.blobs.put("../etc/passwd", new Uint8Array())).rejects.toThrow(/invalid blob key/);
    await expect(h.blobs.put("a//b", new Uint8Array())).rejects.toThrow(/invalid blob key/);
  });

  it("answers ping", async () => {
    await expect(h.blobs.ping()).resolves.toBeUndefined();
  });
});

describe("local signed blob URLs", () => {
  const signer = new Signer("k".repeat(40));
  const sig = signer.sign("blob:img/a.png:1000");
  it.each([
    ["valid before expiry", "img/a.png", "1000", sig, 999, null],
    ["expired", "img/a.png", "1000", sig, 1001, "expired"],
    ["another key", "img/b.png", "1000", sig, 999, "bad-signature"],
    ["extended expiry", "img/a.png", "9000", sig, 999, "bad-signature"],
    ["no signature", "img/a.png", "1000", undefined, 999, "missing"],
  ] as const)("%s", (_case, key, exp, s, now, want) => {
    expect(verifyLocalBlobUrl(signer, key, exp, s, now)).toBe(want);
  });
});
