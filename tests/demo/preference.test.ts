import { readFileSync } from "node:fs";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import {
  demoChoice,
  grain,
  type Pixels,
  PREFERENCE_RULES,
  type PreferenceRule,
  preferenceChoice,
  preferenceScore,
  spoiledSide,
} from "../../functions/src/demo/preference.js";
import { degradeImage } from "../../functions/src/generator/degrade.js";
import { seededRandom } from "../helpers/random.js";

/** Reference scores from NumPy (scripts/demo_preference_reference.py). */
const reference = JSON.parse(
  readFileSync(new URL("../fixtures/demo/preference.json", import.meta.url), "utf8"),
) as { cases: (Omit<Pixels, "data"> & { data: number[]; scores: Record<PreferenceRule, number> })[] };

const solid = (rgb: [number, number, number], w = 2, h = 2): Pixels => ({
  width: w,
  height: h,
  channels: 3,
  data: Uint8Array.from({ length: w * h * 3 }, (_, i) => rgb[i % 3] as number),
});

/** A 5×5 black image with one white pixel at (x, y). */
const dot = (x: number, y: number): Pixels => {
  const data = new Uint8Array(5 * 5 * 3);
  data.fill(255, (y * 5 + x) * 3, (y * 5 + x) * 3 + 3);
  return { width: 5, height: 5, channels: 3, data };
};

describe("preference scores", () => {
  it.each(reference.cases.map((c, i) => [i, c] as const))("match NumPy on reference image %d", (_, c) => {
    const px = { ...c, data: Uint8Array.from(c.data) };
    for (const rule of PREFERENCE_RULES) expect(preferenceScore(rule, px)).toBeCloseTo(c.scores[rule], 9);
  });

  it.each([
    ["brighter", solid([10, 20, 30]), 0.2126 * 10 + 0.7152 * 20 + 0.0722 * 30],
    ["brighter", solid([255, 255, 255]), 255],
    ["darker", solid([255, 255, 255]), -255],
    ["saturated", solid([255, 0, 0]), 1],
    ["saturated", solid([100, 50, 50]), 0.5],
    ["saturated", solid([0, 0, 0]), 0],
    ["red", solid([255, 0, 0]), 255],
    ["red", solid([0, 255, 255]), -255],
    ["red", solid([100, 50, 150]), 0],
    ["centered", dot(2, 2), 0],
    ["centered", dot(1, 1), -0.4],
    ["centered", solid([40, 40, 40]), 0],
  ] as const)("%s of a table image → %d", (rule, px, expected) => {
    expect(preferenceScore(rule, px)).toBeCloseTo(expected, 9);
  });
});

describe("preference choice", () => {
  it.each([
    // left, right, noise, random draws → choice
    [2, 1, 0, [0.5], "left"],
    [1, 2, 0, [0.5], "right"],
    [1, 1, 0, [0.5], "tie"],
    [2, 1, 0.2, [0.19, 0.7], "right"], // a noisy vote: a coin flip
    [2, 1, 0.2, [0.19, 0.3], "left"],
    [2, 1, 0.2, [0.2], "left"], // not noisy: the rule
    [1, 1, 1, [0, 0.1], "left"],
  ] as const)("left %d, right %d, noise %d, draws %j → %s", (l, r, noise, draws, expected) => {
    const queue = [...draws];
    expect(preferenceChoice(l, r, noise, () => queue.shift() as number)).toBe(expected);
  });

  it.each([0, 0.1, 0.3, 1])("follows the rule in 1 − noise/2 of votes (noise %d, 20,000 votes)", (noise) => {
    const random = seededRandom(3);
    const n = 20_000;
    let agree = 0;
    for (let i = 0; i < n; i++) if (preferenceChoice(5, 3, noise, random) === "left") agree++;
    const p = 1 - noise / 2;
    expect(Math.abs(agree - n * p)).toBeLessThanOrEqual(4.5 * Math.sqrt(n * p * (1 - p)) + 1e-9);
  });
});

describe("spoiled images", () => {
  it.each([
    // a 3×1 image: differences |10 − 40| and |40 − 10| per channel
    [{ width: 3, height: 1, channels: 3, data: Uint8Array.from([10, 10, 10, 40, 40, 40, 10, 10, 10]) }, 30],
    [solid([9, 99, 200], 4, 4), 0],
    [{ width: 1, height: 3, channels: 3, data: new Uint8Array(9) }, 0],
  ] as const)("grain of a table image → %d", (px, expected) => {
    expect(grain(px)).toBeCloseTo(expected, 9);
  });

  it.each([
    [27, 2, "left"],
    [2, 27, "right"],
    [9, 3, null], // three times, but only 6 levels apart
    [20, 8, null], // 12 levels apart, but not three times
    [0, 0, null],
  ] as const)("grain %d vs %d → spoiled %s", (l, r, expected) => {
    expect(spoiledSide(l, r)).toBe(expected);
  });

  it.each([
    // left, right, noise, draws → choice
    [{ score: 200, grain: 27 }, { score: 50, grain: 2 }, 0, [0.5], "right"], // the spoiled side loses whatever the rule says
    [{ score: 200, grain: 2 }, { score: 50, grain: 3 }, 0, [0.5], "left"], // neither spoiled: the rule
    [{ score: 200, grain: 27 }, { score: 50, grain: 2 }, 0.3, [0.1, 0.2], "left"], // a noisy vote
  ] as const)("%j vs %j (noise %d, draws %j) → %s", (l, r, noise, draws, expected) => {
    const queue = [...draws];
    expect(demoChoice(l, r, noise, () => queue.shift() as number)).toBe(expected);
  });

  it("sees the generator's degraded copy of a clean render as spoiled", async () => {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">
      <rect width="64" height="64" fill="#2a9d3a"/><circle cx="40" cy="20" r="9" fill="#d62828"/></svg>`;
    const clean = await sharp(Buffer.from(svg)).png().toBuffer();
    const degraded = await degradeImage(clean, "blur", "gen_x");
    const pixels = async (png: Buffer): Promise<Pixels> => {
      const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      return { width: info.width, height: info.height, channels: info.channels, data };
    };
    const [c, d] = [grain(await pixels(clean)), grain(await pixels(degraded))];
    expect(c).toBeLessThan(3);
    expect(d).toBeGreaterThan(20);
    expect(spoiledSide(d, c)).toBe("left");
  });
});
