import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  loraTargets,
  ModelFormatError,
  modelFamily,
  readManifest,
  resolveModelDir,
} from "../../functions/src/inference/model.js";
import { fsBlobStore } from "../../functions/src/platform/blob/fs.js";
import { Signer } from "../../functions/src/platform/signing.js";
import { repoRoot } from "./fixtures.js";

const modelDir = `${repoRoot}tests/fixtures/inference/micro-sd/onnx`;
const root = mkdtempSync(join(tmpdir(), "prefloop-model-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

describe("exported model folders", () => {
  it("reads the manifest and its LoRA targets", async () => {
    const manifest = await readManifest(modelDir);
    const targets = loraTargets(manifest);
    expect(targets.length).toBeGreaterThan(0);
    expect(targets[0]?.keyA).toMatch(/^unet\..*\.lora_A\.weight$/);
    expect(targets[0]?.inFeatures).toBeGreaterThan(0);
  });

  it("reads an SDXL export as the SDXL family, and refuses one without its second encoder", async () => {
    const sdxl = `${repoRoot}models/tiny-sdxl-shapes-onnx`;
    const manifest = await readManifest(sdxl);
    expect(modelFamily(manifest)).toBe("sdxl");
    expect(modelFamily(await readManifest(modelDir))).toBe("sd");
    const broken = (change: (m: Record<string, unknown>) => void) => {
      const m = JSON.parse(readFileSync(`${sdxl}/manifest.json`, "utf8")) as Record<string, unknown>;
      change(m);
      const dir = mkdtempSync(join(root, "sdxl-"));
      writeFileSync(join(dir, "manifest.json"), JSON.stringify(m));
      return readManifest(dir);
    };
    await expect(
      broken((m) => {
        delete (m.components as Record<string, unknown>).text_encoder_2;
      }),
    ).rejects.toThrow(/has no text_encoder_2 component/);
    await expect(
      broken((m) => {
        delete m.tokenizer_2;
      }),
    ).rejects.toThrow(/is SDXL but has no tokenizer_2/);
    await expect(
      broken((m) => {
        m.format = "prefloop-onnx-sd3/1";
      }),
    ).rejects.toThrow(/expected one of prefloop-onnx-sd\/1, prefloop-onnx-sdxl\/1/);
  });

  it("rejects folders without a manifest of the expected format", async () => {
    await expect(readManifest(root)).rejects.toThrow(ModelFormatError);
  });

  it("copies a model from a blob-store prefix once, manifest last", async () => {
    const blobs = fsBlobStore({
      root: join(root, "blobs"),
      publicUrl: "http://x.test",
      signer: new Signer("k".repeat(32)),
      defaultTtlSeconds: 60,
    });
    for (const file of files(modelDir))
      await blobs.put(`models/micro/${relative(modelDir, file)}`, readFileSync(file));
    const local = await resolveModelDir("blob:models/micro", { blobs, cacheDir: join(root, "cache") });
    expect(existsSync(join(local, "unet/model.onnx"))).toBe(true);
    expect((await readManifest(local)).format).toBe("prefloop-onnx-sd/1");
    await blobs.delete("models/micro/manifest.json");
    expect(await resolveModelDir("blob:models/micro", { blobs, cacheDir: join(root, "cache") })).toBe(local);
    await expect(
      resolveModelDir("blob:models/none", { blobs, cacheDir: join(root, "cache") }),
    ).rejects.toThrow(/no manifest.json under blob prefix models\/none\//);
    expect(await resolveModelDir(modelDir, { cacheDir: root })).toBe(modelDir);
  });
});
