/** Reads the golden fixtures ({dtype, shape, b64} tensors) written by torch/diffusers scripts. */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Whether onnxruntime-node has its CUDA provider library (installed with
 * ONNXRUNTIME_NODE_INSTALL=cuda12); without it, `cuda` sessions fall back to the CPU.
 */
export const cudaProviderInstalled = existsSync(
  join(
    dirname(createRequire(import.meta.url).resolve("onnxruntime-node")),
    `../bin/napi-v6/${process.platform}/${process.arch}/libonnxruntime_providers_cuda.so`,
  ),
);

export interface TensorJson {
  dtype: "float32" | "int64" | "uint8";
  shape: number[];
  b64: string;
}

export function readJson<T>(relative: string): T {
  return JSON.parse(readFileSync(`${repoRoot}${relative}`, "utf8")) as T;
}

export function floats(t: TensorJson): Float32Array {
  if (t.dtype !== "float32") throw new Error(`expected float32, got ${t.dtype}`);
  const bytes = Buffer.from(t.b64, "base64");
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

export function ints(t: TensorJson): number[] {
  const bytes = Buffer.from(t.b64, "base64");
  if (t.dtype === "uint8") return Array.from(bytes);
  if (t.dtype !== "int64") throw new Error(`expected int64, got ${t.dtype}`);
  const out: number[] = [];
  for (let i = 0; i < bytes.byteLength; i += 8) out.push(Number(bytes.readBigInt64LE(i)));
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** Largest |a - b| / (|b| + atol): below 1 means "within rtol" when scaled by rtol. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, atol = 1e-6): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const ref = b[i] as number;
    m = Math.max(m, Math.abs((a[i] as number) - ref) / (Math.abs(ref) + atol));
  }
  return m;
}

/** Largest |a - b| relative to the reference tensor's largest magnitude (scale-relative error). */
export function maxScaledDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i] as number));
  return maxAbsDiff(a, b) / (scale || 1);
}

/** Peak signal-to-noise ratio in dB of images with values in [0, peak]. */
export function psnr(got: ArrayLike<number>, want: ArrayLike<number>, peak = 1): number {
  let se = 0;
  for (let i = 0; i < want.length; i++) se += ((got[i] as number) - (want[i] as number)) ** 2;
  const mse = se / want.length;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((peak * peak) / mse);
}
