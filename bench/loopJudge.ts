/**
 * Judges one adapter folder against the base model the way `bench/loop.ts` does, without the
 * platform: each held-out caption rendered by the base and by base + adapter with one seed
 * (DDIM 20 steps, guidance 7.5, as the pool renders pairs), compared by a demo preference rule.
 *
 *   node_modules/.bin/tsx bench/loopJudge.ts <adapter folder> [prompts=48] [rule=brighter] [seed=1000]
 *
 * Prints one JSON line: wins, losses, ties, the win rate and the one-sided binomial p-value.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../functions/src/config.js";
import { type PreferenceRule, preferenceScore } from "../functions/src/demo/preference.js";
import { loadLoraAdapter, loraFeeds, SdPipeline } from "../functions/src/inference/index.js";
import { loraTargets, readManifest } from "../functions/src/inference/model.js";
import { binomialUpperTail, heldoutCaptions } from "../tests/e2e/loopDriver.js";

const [adapterDir, prompts = "48", rule = "brighter", seed = "1000"] = process.argv.slice(2);
if (!adapterDir) throw new Error("usage: tsx bench/loopJudge.ts <adapter folder> [prompts] [rule] [seed]");
const modelDir = join(repoRoot, "models/tiny-shapes-onnx");
const pipe = await SdPipeline.load(modelDir);
const targets = loraTargets(await readManifest(modelDir));
const manifest = JSON.parse(readFileSync(join(adapterDir, "manifest.json"), "utf8")) as {
  alpha?: number;
  rank?: number;
};
const adapter = loadLoraAdapter(
  "adapter",
  readFileSync(join(adapterDir, "pytorch_lora_weights.safetensors")),
  targets,
  {
    alpha: manifest.alpha,
    rank: manifest.rank,
  },
);
const lora = { adapter: loraFeeds(targets, [{ adapter, strength: 1 }]) };
let wins = 0;
let losses = 0;
let ties = 0;
for (const [i, prompt] of heldoutCaptions(Number(prompts)).entries()) {
  const { images } = await pipe.generate({
    images: [
      { prompt, seed: Number(seed) + i },
      { prompt, seed: Number(seed) + i, loraKey: "adapter" },
    ],
    sampler: "ddim",
    steps: 20,
    guidance: 7.5,
    lora,
  });
  const [base, adapted] = images.map((im) =>
    preferenceScore(rule as PreferenceRule, {
      width: im.width,
      height: im.height,
      channels: 3,
      data: im.rgb,
    }),
  ) as [number, number];
  if (adapted > base) wins++;
  else if (adapted < base) losses++;
  else ties++;
}
const n = wins + losses + ties;
console.log(
  JSON.stringify({
    adapterDir,
    rule,
    n,
    wins,
    losses,
    ties,
    winRate: wins / n,
    pValue: binomialUpperTail(wins, n),
  }),
);
process.exit(0);
