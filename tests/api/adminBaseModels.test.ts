/**
 * Registering base models from the blob store through the admin API (PGlite, filesystem blobs):
 * the committed tiny SD and SDXL exports and their diffusers folders are uploaded, registered
 * over HTTP, listed and shown; broken exports, unknown hashes and hash conflicts are refused
 * with nothing written; the generator reads the registered export back from the blob store.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { count, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseModelTargets, checkAdapter } from "../../functions/src/adapters/validate.js";
import { createApp } from "../../functions/src/app.js";
import { onnxUriOf } from "../../functions/src/baseModels/exportLocation.js";
import {
  checksumsFolderSha256,
  comparePaths,
  folderSha256,
} from "../../functions/src/baseModels/identity.js";
import { baseModelSummary, registerBaseModel } from "../../functions/src/baseModels/register.js";
import { loadConfig, repoRoot } from "../../functions/src/config.js";
import { adapters, baseModels } from "../../functions/src/db/schema.js";
import { modelSource } from "../../functions/src/generator/generator.js";
import { readManifest, resolveModelDir } from "../../functions/src/inference/model.js";
import { modelFolderSha256 } from "../../functions/src/local/baseModel.js";
import { blobUri } from "../../functions/src/platform/blob/uri.js";
import { trainingBaseUri } from "../../functions/src/training/runs.js";
import { ADMIN_KEY, type Harness, openHarness } from "./votingHarness.js";

type Json = Record<string, unknown> & { error?: { code: string; message: string } };

/**
 * The folder hashes the worker computes (`model_sha256` in gpu-worker/src/prefloop_worker/
 * train/model.py, run on the committed folders): the reference the Node side must agree with.
 */
const WORKER_SHA256 = {
  "models/tiny-shapes": "a34d0bf3004312ca53b5eb2acf286cb18cc247efd19c71368b8739c4b0a75bf3",
  "models/tiny-sdxl-shapes": "13cea7e6b8607e252b6312e1a000f43df4fc8dc8e2e7fb1bd806c134cc83c828",
};

function filesOf(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) out.push(relative(dir, full).split(sep).join("/"));
    }
  };
  walk(dir);
  return out.sort();
}

describe("admin API: base models from the blob store", () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let cache: string;
  const call = async (method: string, path: string, body?: unknown, key: string | null = ADMIN_KEY) => {
    const headers: Record<string, string> = {};
    if (key) headers["x-admin-key"] = key;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await app.request(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const upload = async (folder: string, prefix: string, skip: (rel: string) => boolean = () => false) => {
    for (const rel of filesOf(join(repoRoot, folder)))
      if (!skip(rel)) await h.deps.blobs.putFile(`${prefix}${rel}`, join(repoRoot, folder, rel));
  };
  const rowCount = async () => (await h.deps.db.orm.select({ n: count() }).from(baseModels))[0]?.n;

  beforeAll(async () => {
    h = await openHarness("pglite");
    app = createApp(h.deps);
    cache = mkdtempSync(join(tmpdir(), "prefloop-basemodel-cache-"));
    await upload("models/tiny-shapes-onnx", "models/tiny-shapes-onnx/");
    await upload("models/tiny-shapes", "models/tiny-shapes/");
    await upload("models/tiny-sdxl-shapes-onnx", "models/tiny-sdxl-shapes-onnx/");
    await upload("models/tiny-sdxl-shapes", "models/tiny-sdxl-shapes/");
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    if (cache) rmSync(cache, { recursive: true, force: true });
  });

  it("agrees with the worker on the folder hash, from the files and from checksums.sha256", () => {
    for (const [folder, expected] of Object.entries(WORKER_SHA256)) {
      const dir = join(repoRoot, folder);
      expect(modelFolderSha256(dir)).toBe(expected);
      const fromChecksums = checksumsFolderSha256(
        readFileSync(join(dir, "checksums.sha256")),
        filesOf(dir),
        `${folder}/checksums.sha256`,
      );
      expect(fromChecksums).toBe(expected);
    }
    // hidden files are left out; the order of the lines does not matter
    const a = folderSha256([
      { path: "b", sha256: "1" },
      { path: "a", sha256: "2" },
      { path: ".cache/x", sha256: "3" },
    ]);
    expect(a).toBe(
      folderSha256([
        { path: "a", sha256: "2" },
        { path: "b", sha256: "1" },
      ]),
    );
    expect(a).not.toBe(folderSha256([{ path: "a", sha256: "2" }]));
  });

  it("orders paths as the worker's sorted(Path) does, segment by segment", () => {
    // Python: [str(p) for p in sorted(PurePosixPath(x) for x in paths)]
    const python = [
      "Z/x",
      "a/b",
      "a/b/c",
      "a/x",
      "a b/c",
      "a-b/x",
      "a.txt",
      "ab",
      "unet/x",
      "unet.json",
      "z/x",
      "～/x",
      "😀/x",
    ];
    const shuffled = [...python].reverse();
    expect(shuffled.sort(comparePaths)).toEqual(python);
    // so the folder hash of names that a plain string sort orders differently follows the worker
    const files = ["unet.json", "unet/x"].map((path) => ({ path, sha256: "0".repeat(64) }));
    const lines = (order: string[]) => order.map((p) => `${p}\0${"0".repeat(64)}\n`).join("");
    const sha = (text: string) => createHash("sha256").update(text).digest("hex");
    expect(folderSha256(files)).toBe(sha(lines(["unet/x", "unet.json"])));
    expect(folderSha256(files)).not.toBe(sha(lines(["unet.json", "unet/x"])));
  });

  it("needs the admin key", async () => {
    const body = { onnxPrefix: "models/tiny-shapes-onnx/" };
    expect((await call("POST", "/api/admin/base-models", body, null)).status).toBe(401);
    const wrong = await call("POST", "/api/admin/base-models", body, "not-the-key");
    expect(wrong.status).toBe(401);
    expect(wrong.body.error?.code).toBe("unauthorized");
    expect((await call("GET", "/api/admin/base-models", undefined, null)).status).toBe(401);
    const closed = createApp({ ...h.deps, config: { ...h.deps.config, adminApiKey: undefined } });
    const res = await closed.request("/api/admin/base-models", {
      method: "POST",
      headers: { "content-type": "application/json", "x-admin-key": ADMIN_KEY },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(403);
    expect(await rowCount()).toBe(0);
  });

  it("registers the SD model, its hash computed from the diffusers folder's checksums", async () => {
    const r = await call("POST", "/api/admin/base-models", {
      onnxPrefix: "models/tiny-shapes-onnx/",
      diffusersUri: "blob:models/tiny-shapes/",
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      id: "tiny-shapes",
      name: "tiny-shapes",
      family: "stable-diffusion",
      width: 64,
      height: 64,
      sha256: WORKER_SHA256["models/tiny-shapes"],
      onnxUri: "blob:models/tiny-shapes-onnx/",
      diffusersUri: blobUri(h.deps.config.blob, "models/tiny-shapes/"),
    });
  });

  it("registers the SDXL model under a given id and name (this bucket's URI for the diffusers folder)", async () => {
    const r = await call("POST", "/api/admin/base-models", {
      onnxPrefix: "blob:models/tiny-sdxl-shapes-onnx",
      diffusersUri: blobUri(h.deps.config.blob, "models/tiny-sdxl-shapes/"),
      id: "sdxl-tiny",
      name: "tiny SDXL shapes",
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      id: "sdxl-tiny",
      name: "tiny SDXL shapes",
      family: "stable-diffusion-xl",
      width: 64,
      height: 64,
      onnxUri: "blob:models/tiny-sdxl-shapes-onnx/",
    });
    expect(r.body.sha256).toBe(modelFolderSha256(join(repoRoot, "models/tiny-sdxl-shapes")));
    expect(r.body.sha256).toBe(WORKER_SHA256["models/tiny-sdxl-shapes"]);
    const [row] = await h.deps.db.orm.select().from(baseModels).where(eq(baseModels.id, "sdxl-tiny"));
    expect(row?.sha256).toBe(r.body.sha256);
  });

  it("lists and shows the models with their export at a glance", async () => {
    const list = await call("GET", "/api/admin/base-models");
    expect(list.status).toBe(200);
    expect((list.body.baseModels as Json[]).map((b) => b.id)).toEqual(["tiny-shapes", "sdxl-tiny"]);

    const sdxlManifest = JSON.parse(
      readFileSync(join(repoRoot, "models/tiny-sdxl-shapes-onnx/manifest.json"), "utf8"),
    );
    const one = await call("GET", "/api/admin/base-models/sdxl-tiny");
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      id: "sdxl-tiny",
      family: "stable-diffusion-xl",
      manifest: {
        format: "prefloop-onnx-sdxl/1",
        family: "stable-diffusion-xl",
        width: 64,
        height: 64,
        loraTargets: sdxlManifest.lora.targets.length,
      },
      manifestError: null,
      championAdapterId: null,
      adapterCount: 0,
    });
    const sd = await call("GET", "/api/admin/base-models/tiny-shapes");
    expect((sd.body.manifest as Json).format).toBe("prefloop-onnx-sd/1");
    expect((sd.body.manifest as Json).loraTargets).toBe(56);

    const missing = await call("GET", "/api/admin/base-models/nope");
    expect(missing.status).toBe(404);
    expect(missing.body.error?.code).toBe("base_model_not_found");
  });

  it("stores an onnxUri the generator reads back from the blob store", async () => {
    const [row] = await h.deps.db.orm.select().from(baseModels).where(eq(baseModels.id, "sdxl-tiny"));
    const source = modelSource(row?.onnxUri ?? null, "fallback");
    expect(source).toBe("blob:models/tiny-sdxl-shapes-onnx/");
    const dir = await resolveModelDir(source, { blobs: h.deps.blobs, cacheDir: cache });
    const manifest = await readManifest(dir);
    expect(manifest.format).toBe("prefloop-onnx-sdxl/1");
    const copied = readFileSync(join(dir, "unet/model.onnx"));
    const original = readFileSync(join(repoRoot, "models/tiny-sdxl-shapes-onnx/unet/model.onnx"));
    expect(copied.length).toBe(original.length);
    expect(copied.equals(original)).toBe(true);
    // on S3 the URI names the deployment's bucket, and the generator maps it to the same prefix
    const s3 = loadConfig({ PREFLOOP_ENV: "test", BLOB_BACKEND: "s3", S3_BUCKET: "prefloop-blobs" });
    const uri = onnxUriOf(s3, "models/tiny-sdxl-shapes-onnx/");
    expect(uri).toBe("s3://prefloop-blobs/models/tiny-sdxl-shapes-onnx/");
    expect(modelSource(uri, "fallback")).toBe("blob:models/tiny-sdxl-shapes-onnx/");
  });

  it("checks adapters against the registered export's LoRA targets, read from the blob store", async () => {
    const [row] = await h.deps.db.orm.select().from(baseModels).where(eq(baseModels.id, "sdxl-tiny"));
    const base = row as NonNullable<typeof row>;
    const targets = await baseModelTargets(h.deps, base);
    expect(targets?.length).toBe(88);
    const manifest = { baseModelId: base.id, baseModelSha256: base.sha256, rank: 4 };
    const weights = (dir: string) =>
      readFileSync(join(repoRoot, dir, "adapter/pytorch_lora_weights.safetensors"));
    // the SDXL golden adapter fits the SDXL export; the SD one has the right structure but not its targets
    expect(checkAdapter("sdxl", base, targets, manifest, weights("tests/fixtures/golden-sdxl"))).toEqual({
      ok: true,
      rank: 4,
    });
    const sd = checkAdapter("sd", base, targets, manifest, weights("tests/fixtures/golden"));
    expect(sd.ok).toBe(false);
    expect(sd.ok || sd.reason).toMatch(/^adapter sd: /);
  });

  it("on S3, takes and stores the bucket's s3:// URIs (the trainer's and the generator's form)", async () => {
    const s3 = loadConfig({ PREFLOOP_ENV: "test", BLOB_BACKEND: "s3", S3_BUCKET: "prefloop-blobs" });
    // the filesystem store stands in for the bucket: the keys are the same
    const deps = { ...h.deps, config: s3 };
    const out = await registerBaseModel(deps, {
      onnxPrefix: "s3://prefloop-blobs/models/tiny-sdxl-shapes-onnx/",
      diffusersUri: "s3://prefloop-blobs/models/tiny-sdxl-shapes/",
      id: "sdxl-on-s3",
    });
    expect(out.created).toBe(true);
    expect(out.baseModel).toMatchObject({
      family: "stable-diffusion-xl",
      onnxUri: "s3://prefloop-blobs/models/tiny-sdxl-shapes-onnx/",
      diffusersUri: "s3://prefloop-blobs/models/tiny-sdxl-shapes/",
      sha256: WORKER_SHA256["models/tiny-sdxl-shapes"],
    });
    expect(trainingBaseUri(out.baseModel)).toBe("s3://prefloop-blobs/models/tiny-sdxl-shapes/");
    expect(modelSource(out.baseModel.onnxUri, "fallback")).toBe("blob:models/tiny-sdxl-shapes-onnx/");
    const summary = await baseModelSummary(deps, out.baseModel);
    expect(summary.manifest).toMatchObject({ format: "prefloop-onnx-sdxl/1", width: 64, height: 64 });
    // another bucket is not this deployment's blob store
    await expect(
      registerBaseModel(deps, {
        onnxPrefix: "s3://other-bucket/models/tiny-sdxl-shapes-onnx/",
        sha256: "a".repeat(64),
        id: "elsewhere",
      }),
    ).rejects.toMatchObject({ status: 422, code: "invalid_prefix" });
    await h.deps.db.orm.delete(baseModels).where(eq(baseModels.id, "sdxl-on-s3"));
  });

  it("refuses broken exports with a clear 422 and writes nothing", async () => {
    const before = await rowCount();
    const manifest = JSON.parse(
      readFileSync(join(repoRoot, "models/tiny-shapes-onnx/manifest.json"), "utf8"),
    );
    // a manifest of another format
    await upload("models/tiny-shapes-onnx", "broken/wrong-format-onnx/", (rel) => rel === "manifest.json");
    await h.deps.blobs.put(
      "broken/wrong-format-onnx/manifest.json",
      new TextEncoder().encode(JSON.stringify({ ...manifest, format: "prefloop-onnx-sd/0" })),
    );
    // an export whose UNet was never uploaded
    await upload("models/tiny-shapes-onnx", "broken/no-unet-onnx/", (rel) => rel.startsWith("unet/"));
    // no manifest at all
    await upload("models/tiny-shapes-onnx", "broken/no-manifest-onnx/", (rel) => rel === "manifest.json");
    // not JSON
    await h.deps.blobs.put("broken/garbled-onnx/manifest.json", new TextEncoder().encode("{not json"));

    const cases: [string, string, RegExp][] = [
      ["broken/wrong-format-onnx/", "bad_manifest", /format "prefloop-onnx-sd\/0", expected one of/],
      ["broken/no-unet-onnx/", "missing_files", /unet\/model\.onnx/],
      [
        "broken/no-manifest-onnx/",
        "no_manifest",
        /no manifest\.json under blob prefix broken\/no-manifest-onnx\//,
      ],
      ["broken/garbled-onnx/", "bad_manifest", /cannot read the model manifest/],
      ["nothing/here/", "no_manifest", /no manifest\.json/],
    ];
    for (const [onnxPrefix, code, message] of cases) {
      const r = await call("POST", "/api/admin/base-models", {
        onnxPrefix,
        sha256: "a".repeat(64),
      });
      expect(r.status, onnxPrefix).toBe(422);
      expect(r.body.error?.code, onnxPrefix).toBe(code);
      expect(r.body.error?.message, onnxPrefix).toMatch(message);
    }
    expect(await rowCount()).toBe(before);
  });

  it("refuses when the content hash cannot be established, saying to pass sha256", async () => {
    const before = await rowCount();
    const post = (body: Json) => call("POST", "/api/admin/base-models", { id: "hashless", ...body });
    // neither sha256 nor a diffusers folder
    const none = await post({ onnxPrefix: "models/tiny-shapes-onnx/" });
    expect(none.status).toBe(422);
    expect(none.body.error?.code).toBe("sha256_unknown");
    expect(none.body.error?.message).toMatch(/Pass sha256/);
    // a diffusers folder outside the blob store
    const outside = await post({
      onnxPrefix: "models/tiny-shapes-onnx/",
      diffusersUri: "s3://someone-elses-bucket/models/tiny-shapes/",
    });
    expect(outside.status).toBe(422);
    expect(outside.body.error?.message).toMatch(/not in this deployment's blob store.*Pass sha256/);
    // a folder with a file its checksums do not list: its hash would not be the folder's
    await upload("models/tiny-shapes", "extra/tiny-shapes/");
    await h.deps.blobs.put("extra/tiny-shapes/unet/notes.txt", new TextEncoder().encode("added later"));
    const extra = await post({
      onnxPrefix: "models/tiny-shapes-onnx/",
      diffusersUri: "blob:extra/tiny-shapes/",
    });
    expect(extra.status).toBe(422);
    expect(extra.body.error?.message).toMatch(/not listed: unet\/notes\.txt/);
    // a folder without checksums.sha256
    await upload("models/tiny-shapes", "nosums/tiny-shapes/", (rel) => rel === "checksums.sha256");
    const nosums = await post({
      onnxPrefix: "models/tiny-shapes-onnx/",
      diffusersUri: "blob:nosums/tiny-shapes/",
    });
    expect(nosums.status).toBe(422);
    expect(nosums.body.error?.message).toMatch(/has no checksums\.sha256/);
    // a file listed but not uploaded
    await upload("models/tiny-shapes", "partial/tiny-shapes/", (rel) => rel === "unet/config.json");
    const partial = await post({
      onnxPrefix: "models/tiny-shapes-onnx/",
      diffusersUri: "blob:partial/tiny-shapes/",
    });
    expect(partial.status).toBe(422);
    expect(partial.body.error?.message).toMatch(/listed but absent: unet\/config\.json/);
    // malformed input is a 400 from the schema
    const badSha = await post({ onnxPrefix: "models/tiny-shapes-onnx/", sha256: "xyz" });
    expect(badSha.status).toBe(400);
    const badId = await call("POST", "/api/admin/base-models", {
      onnxPrefix: "models/tiny-shapes-onnx/",
      sha256: "a".repeat(64),
      id: "../etc",
    });
    expect(badId.status).toBe(400);
    const nul = await post({
      onnxPrefix: "models/tiny-shapes-onnx/",
      sha256: "a".repeat(64),
      name: "a\u0000b",
    });
    expect(nul.status).toBe(400);
    const badPrefix = await post({ onnxPrefix: "../../etc/", sha256: "a".repeat(64) });
    expect(badPrefix.status).toBe(422);
    expect(badPrefix.body.error?.code).toBe("invalid_prefix");
    expect(await rowCount()).toBe(before);
  });

  it("takes a given sha256 and keeps a diffusers path outside the blob store as is", async () => {
    const r = await call("POST", "/api/admin/base-models", {
      onnxPrefix: "models/tiny-shapes-onnx/",
      id: "tiny-shapes-given",
      diffusersUri: "/mnt/models/tiny-shapes",
      sha256: "AB".repeat(32),
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ sha256: "ab".repeat(32), diffusersUri: "/mnt/models/tiny-shapes" });
  });

  it("updates a registered id, unless adapters trained on another hash exist (409)", async () => {
    const again = await call("POST", "/api/admin/base-models", {
      onnxPrefix: "models/tiny-sdxl-shapes-onnx/",
      diffusersUri: "blob:models/tiny-sdxl-shapes/",
      id: "sdxl-tiny",
      name: "renamed",
    });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: "sdxl-tiny", name: "renamed" });

    await h.deps.db.orm.insert(adapters).values({
      id: "sdxl-tiny-dpo-1",
      baseModelId: "sdxl-tiny",
      blobPrefix: "adapters/sdxl-tiny-dpo-1/",
      status: "champion",
    });
    const conflict = await call("POST", "/api/admin/base-models", {
      onnxPrefix: "models/tiny-sdxl-shapes-onnx/",
      id: "sdxl-tiny",
      sha256: "f".repeat(64),
    });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error?.code).toBe("sha256_conflict");
    expect(conflict.body.error?.message).toMatch(/another id/);
    const [row] = await h.deps.db.orm.select().from(baseModels).where(eq(baseModels.id, "sdxl-tiny"));
    expect(row?.sha256).toBe(WORKER_SHA256["models/tiny-sdxl-shapes"]);
    expect(row?.name).toBe("renamed");

    // the same hash is still fine, and the detail names the champion
    const same = await call("POST", "/api/admin/base-models", {
      onnxPrefix: "models/tiny-sdxl-shapes-onnx/",
      id: "sdxl-tiny",
      sha256: WORKER_SHA256["models/tiny-sdxl-shapes"],
      diffusersUri: "blob:models/tiny-sdxl-shapes/",
    });
    expect(same.status).toBe(200);
    const one = await call("GET", "/api/admin/base-models/sdxl-tiny");
    expect(one.body).toMatchObject({ championAdapterId: "sdxl-tiny-dpo-1", adapterCount: 1 });
  });

  it("documents the routes in /openapi.json", async () => {
    const doc = (await (await app.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(Object.keys(doc.paths["/api/admin/base-models"] ?? {}).sort()).toEqual(["get", "post"]);
    expect(Object.keys(doc.paths["/api/admin/base-models/{id}"] ?? {})).toEqual(["get"]);
    expect(Object.keys(doc.paths["/api/admin/base-models"]?.post?.responses ?? {})).toEqual(
      expect.arrayContaining(["201", "401", "409", "422"]),
    );
  });
});
