/**
 * The demo voters' hidden taste: a rule on the image pixels that no prompt mentions, so that
 * the loop has something real to learn. Each rule scores an image; the voter prefers the
 * higher score, except for a share `noise` of votes chosen at random.
 *
 * - `brighter` / `darker`: mean luma (Rec. 709: 0.2126 R + 0.7152 G + 0.0722 B), up / down;
 * - `saturated`: mean HSV saturation, (max − min) / max per pixel (0 for black);
 * - `centered`: how close the picture's content sits to the centre: the centroid of each pixel's
 *   distance from the mean border colour, scored by minus its distance from the image centre
 *   (in units of the half-diagonal);
 * - `red`: mean redness, R − (G + B) / 2, in [−255, 255].
 *
 * Like a person, the voter first rejects an image that is visibly spoiled (a gold pair's blurred,
 * noisy copy): `grain`, the mean absolute difference between horizontally adjacent pixels, is
 * about 27 levels for the degraded copy and 1–3 for the tiny model's clean renders.
 */
import type { Random } from "../domain/pairing.js";

export const PREFERENCE_RULES = ["brighter", "darker", "saturated", "centered", "red"] as const;
export type PreferenceRule = (typeof PREFERENCE_RULES)[number];

/** Decoded pixels, row-major, `channels` bytes per pixel (RGB or RGBA; alpha is ignored). */
export interface Pixels {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

export type DemoChoice = "left" | "right" | "tie";

function meanOver(px: Pixels, f: (r: number, g: number, b: number) => number): number {
  const n = px.width * px.height;
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const o = i * px.channels;
    sum += f(px.data[o] as number, px.data[o + 1] as number, px.data[o + 2] as number);
  }
  return sum / n;
}

const luma = (r: number, g: number, b: number) => 0.2126 * r + 0.7152 * g + 0.0722 * b;

function centeredness(px: Pixels): number {
  const { width: w, height: h, channels: c, data } = px;
  if (w === 0 || h === 0) return 0;
  // the background: the mean colour of the border pixels
  const bg = [0, 0, 0];
  let border = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (x !== 0 && y !== 0 && x !== w - 1 && y !== h - 1) continue;
      for (let k = 0; k < 3; k++) bg[k] = (bg[k] as number) + (data[(y * w + x) * c + k] as number);
      border++;
    }
  }
  for (let k = 0; k < 3; k++) bg[k] = (bg[k] as number) / border;
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * c;
      let d = 0;
      for (let k = 0; k < 3; k++) d += Math.abs((data[o + k] as number) - (bg[k] as number));
      mass += d;
      cx += d * (x + 0.5);
      cy += d * (y + 0.5);
    }
  }
  if (mass === 0) return 0; // a flat image: nothing off centre
  const dx = cx / mass - w / 2;
  const dy = cy / mass - h / 2;
  return -Math.hypot(dx, dy) / Math.hypot(w / 2, h / 2);
}

/** The score of one image under a rule: higher is preferred. */
export function preferenceScore(rule: PreferenceRule, px: Pixels): number {
  switch (rule) {
    case "brighter":
      return meanOver(px, luma);
    case "darker":
      return -meanOver(px, luma);
    case "saturated":
      return meanOver(px, (r, g, b) => {
        const max = Math.max(r, g, b);
        return max === 0 ? 0 : (max - Math.min(r, g, b)) / max;
      });
    case "centered":
      return centeredness(px);
    case "red":
      return meanOver(px, (r, g, b) => r - (g + b) / 2);
  }
}

/** Scores closer than this are a tie (the voter cannot tell them apart). */
export const TIE_EPSILON = 1e-9;

/**
 * The demo voter's choice between two scored images: with probability `noise` a coin flip
 * between left and right, else the higher score (a tie when the scores are equal).
 */
export function preferenceChoice(left: number, right: number, noise: number, random: Random): DemoChoice {
  if (random() < noise) return random() < 0.5 ? "left" : "right";
  if (Math.abs(left - right) <= TIE_EPSILON) return "tie";
  return left > right ? "left" : "right";
}

/** Mean absolute difference between horizontally adjacent pixels, over RGB (levels 0–255). */
export function grain(px: Pixels): number {
  const { width: w, height: h, channels: c, data } = px;
  if (w < 2 || h === 0) return 0;
  let sum = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w - 1; x++) {
      const o = (y * w + x) * c;
      for (let k = 0; k < 3; k++) sum += Math.abs((data[o + k] as number) - (data[o + c + k] as number));
    }
  }
  return sum / (h * (w - 1) * 3);
}

/** An image counts as visibly spoiled when its grain is this many times the other's … */
export const SPOILED_RATIO = 3;
/** … and at least this many levels above it. */
export const SPOILED_MARGIN = 8;

/** The side that is visibly spoiled next to the other, or null when neither is. */
export function spoiledSide(leftGrain: number, rightGrain: number): "left" | "right" | null {
  const spoiled = (a: number, b: number) => a >= SPOILED_RATIO * b && a - b >= SPOILED_MARGIN;
  if (spoiled(leftGrain, rightGrain)) return "left";
  if (spoiled(rightGrain, leftGrain)) return "right";
  return null;
}

export interface LookedAt {
  /** The rule's score. */
  score: number;
  grain: number;
}

/**
 * The demo voter's whole judgement: with probability `noise` a coin flip; else the clean image
 * when the other is visibly spoiled; else the rule (`preferenceChoice` without noise).
 */
export function demoChoice(left: LookedAt, right: LookedAt, noise: number, random: Random): DemoChoice {
  if (random() < noise) return random() < 0.5 ? "left" : "right";
  const spoiled = spoiledSide(left.grain, right.grain);
  if (spoiled) return spoiled === "left" ? "right" : "left";
  return preferenceChoice(left.score, right.score, 0, random);
}
