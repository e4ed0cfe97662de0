/**
 * Degradations of gold pairs: the degraded side is the same render as its clean partner, spoiled
 * after decoding so that a person sees the difference at a glance. `blur`: a Gaussian blur of
 * σ = 6 % of the shorter side (4 px at 64 px, 61 px at 1024 px), then Gaussian pixel noise of
 * σ = 24 levels, drawn from a generator seeded by the generation id (a redelivered job writes the
 * same image).
 */
import { createHash } from "node:crypto";
import sharp from "sharp";
import type { Degradation } from "../domain/pairing.js";

export const BLUR_SIGMA_SHARE = 0.06;
export const NOISE_SIGMA = 24;

/** A small seeded PRNG (mulberry32): the noise of one generation is reproducible. */
function seededRandom(key: string): () => number {
  let a = createHash("sha256").update(key).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Applies a degradation to a PNG and returns the degraded PNG (same size, RGB). */
export async function degradeImage(png: Uint8Array, degradation: Degradation, key: string): Promise<Buffer> {
  if (degradation !== "blur") throw new Error(`unknown degradation ${degradation}`);
  const meta = await sharp(png).metadata();
  const side = Math.min(meta.width ?? 64, meta.height ?? 64);
  const sigma = Math.max(1, BLUR_SIGMA_SHARE * side);
  const { data, info } = await sharp(png)
    .removeAlpha()
    .blur(sigma)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const random = seededRandom(key);
  for (let i = 0; i < data.length; i += 2) {
    // Box–Muller: two normal draws per pair of uniforms
    const u = Math.max(random(), 1e-12);
    const r = Math.sqrt(-2 * Math.log(u)) * NOISE_SIGMA;
    const theta = 2 * Math.PI * random();
    data[i] = Math.max(0, Math.min(255, Math.round((data[i] as number) + r * Math.cos(theta))));
    if (i + 1 < data.length) {
      data[i + 1] = Math.max(0, Math.min(255, Math.round((data[i + 1] as number) + r * Math.sin(theta))));
    }
  }
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } })
    .png()
    .toBuffer();
}
