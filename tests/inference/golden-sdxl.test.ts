/**
 * The Node SDXL pipeline against diffusers' `StableDiffusionXLPipeline` on the tiny SDXL model:
 * fixtures in tests/fixtures/golden-sdxl (written by diffusers/transformers/torch only: see its
 * README), the ONNX export in models/tiny-sdxl-shapes-onnx.
 */
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadLoraAdapter, loraFeeds } from "../../functions/src/inference/lora.js";
import { type MicroConditioning, SdPipeline } from "../../functions/src/inference/pipeline.js";
import { parsePythonJson } from "../../functions/src/inference/schedulers/common.js";
import type { SamplerName } from "../../functions/src/inference/schedulers/index.js";
import { floats, ints, maxAbsDiff, maxScaledDiff, psnr, repoRoot, type TensorJson } from "./fixtures.js";

const onnxDir = `${repoRoot}models/tiny-sdxl-shapes-onnx`;
const goldenDir = `${repoRoot}tests/fixtures/golden-sdxl`;
const golden = <T>(file: string): T => parsePythonJson(readFileSync(`${goldenDir}/${file}`, "utf8")) as T;

const report: Record<string, number> = {};
afterAll(() => {
  if (Object.keys(report).length) console.info(`tiny SDXL parity: ${JSON.stringify(report)}`);
});
const worst = (key: string, value: number) => {
  report[key] = Math.max(report[key] ?? 0, value);
};

interface PipelineRun {
  name: string;
  prompt: string;
  negative_prompt: string | null;
  scheduler: string;
  seed: number;
  num_inference_steps: number;
  guidance_scale: number;
  original_size: [number, number];
  crops_coords_top_left: [number, number];
  target_size: [number, number];
  adapter: string | null;
  final_latents: TensorJson;
  image_float: TensorJson;
  image_uint8: TensorJson;
}

describe.skipIf(!existsSync(`${onnxDir}/manifest.json`))(
  "golden fixtures: the tiny SDXL model on onnxruntime-node",
  () => {
    let pipeline: SdPipeline;
    beforeAll(async () => {
      pipeline = await SdPipeline.load(onnxDir, { intraOpThreads: 2 });
    });
    afterAll(async () => {
      await pipeline?.release();
    });

    const adapter = () =>
      loadLoraAdapter(
        "golden",
        readFileSync(`${goldenDir}/adapter/pytorch_lora_weights.safetensors`),
        pipeline.targets,
      );

    it("is read as SDXL, with every attention projection a LoRA target", () => {
      expect(pipeline.family).toBe("sdxl");
      expect(pipeline.targets.length).toBe(88);
      expect(pipeline.text.pooledSize).toBe(64);
    });

    it("both tokenizers and encoders: prompt_embeds and pooled embeddings within 1e-4 of encode_prompt", async () => {
      const fx = golden<{
        prompts: string[];
        tokenizer: { input_ids: TensorJson };
        prompt_embeds: TensorJson;
        pooled_prompt_embeds: TensorJson;
      }>("text_encoders.json");
      expect(Array.from(pipeline.tokenizer.encodeBatch(fx.prompts), Number)).toEqual(
        ints(fx.tokenizer.input_ids),
      );
      const embedded = await pipeline.text.encode(fx.prompts);
      const hidden = new Float32Array(embedded.flatMap((e) => Array.from(e.hidden)));
      const pooled = new Float32Array(embedded.flatMap((e) => Array.from(e.pooled ?? [])));
      const dh = maxAbsDiff(hidden, floats(fx.prompt_embeds));
      const dp = maxAbsDiff(pooled, floats(fx.pooled_prompt_embeds));
      worst("promptEmbedsMaxAbs", dh);
      worst("pooledMaxAbs", dp);
      expect(dh).toBeLessThan(1e-4);
      expect(dp).toBeLessThan(1e-4);
    });

    it("UNet with text_embeds and time_ids, with and without the adapter, within 1e-4", async () => {
      const u = golden<{
        inputs: {
          sample: TensorJson;
          timestep: TensorJson;
          encoder_hidden_states: TensorJson;
          text_embeds: TensorJson;
          time_ids: TensorJson;
        };
        no_adapter: TensorJson;
        with_adapter: TensorJson;
        with_adapter_strength_0_5: TensorJson;
      }>("unet.json");
      const a = adapter();
      const sample = floats(u.inputs.sample);
      const ts = floats(u.inputs.timestep);
      const h = floats(u.inputs.encoder_hidden_states);
      const pooled = floats(u.inputs.text_embeds);
      const timeIds = floats(u.inputs.time_ids);
      const cases: [string, TensorJson, number | null][] = [
        ["unetNoAdapterMaxAbs", u.no_adapter, null],
        ["unetAdapterMaxAbs", u.with_adapter, 1],
        ["unetAdapterHalfMaxAbs", u.with_adapter_strength_0_5, 0.5],
      ];
      const part = (x: Float32Array, b: number) => x.slice((b * x.length) / 2, ((b + 1) * x.length) / 2);
      for (const [name, want, strength] of cases) {
        const feeds = strength === null ? undefined : loraFeeds(pipeline.targets, [{ adapter: a, strength }]);
        const got = new Float32Array(sample.length);
        for (let b = 0; b < 2; b++) {
          const out = await pipeline.unetStep(part(sample, b), 1, ts[b] as number, part(h, b), feeds, {
            textEmbeds: part(pooled, b),
            timeIds: part(timeIds, b),
          });
          got.set(out, (b * sample.length) / 2);
        }
        const d = maxAbsDiff(got, floats(want));
        worst(name, d);
        expect(d, name).toBeLessThan(1e-4);
      }
    });

    it("whole pipelines (zeros or a negative prompt, Euler and DDIM, an adapter, micro-conditioning): PSNR >= 40 dB", async () => {
      const fx = golden<{ runs: PipelineRun[] }>("pipelines.json");
      const samplers: Record<string, SamplerName> = {
        DDIMScheduler: "ddim",
        EulerDiscreteScheduler: "euler",
      };
      const a = adapter();
      expect(fx.runs.map((r) => r.name)).toEqual([
        "euler_zero_negative_a",
        "euler_zero_negative_b",
        "euler_negative_text",
        "ddim_zero_negative",
        "euler_adapter",
        "euler_micro_conditioning",
      ]);
      let minPsnr = Number.POSITIVE_INFINITY;
      for (const run of fx.runs) {
        const micro: MicroConditioning = {
          originalSize: run.original_size,
          cropTopLeft: run.crops_coords_top_left,
          targetSize: run.target_size,
        };
        const { images } = await pipeline.generate({
          images: [
            {
              prompt: run.prompt,
              // diffusers' null negative prompt is our empty one (zeros with force_zeros_for_empty_prompt)
              negativePrompt: run.negative_prompt ?? "",
              seed: run.seed,
              loraKey: run.adapter ? "a" : undefined,
            },
          ],
          sampler: samplers[run.scheduler] as SamplerName,
          steps: run.num_inference_steps,
          guidance: run.guidance_scale,
          lora: run.adapter ? { a: loraFeeds(pipeline.targets, [{ adapter: a, strength: 1 }]) } : undefined,
          micro,
          returnFloat: true,
        });
        const image = images[0];
        worst("finalLatentsMaxRel", maxScaledDiff(image?.latents ?? [], floats(run.final_latents)));
        const p = psnr(image?.float ?? [], floats(run.image_float));
        minPsnr = Math.min(minPsnr, p);
        expect(p, run.name).toBeGreaterThanOrEqual(40);
        const bytes = ints(run.image_uint8);
        expect(maxAbsDiff(image?.rgb ?? [], bytes), run.name).toBeLessThanOrEqual(1);
      }
      report.minPipelinePsnrDb = minPsnr;
    });

    it("the default time ids are the image size with no crop, and micro-conditioning changes the image", async () => {
      expect(Array.from(pipeline.timeIds())).toEqual([64, 64, 0, 0, 64, 64]);
      const req = {
        images: [{ prompt: "two small red circles on a blue background", seed: 3 }],
        sampler: "euler" as const,
        steps: 4,
        guidance: 5,
      };
      const plain = (await pipeline.generate(req)).images[0]?.rgb ?? new Uint8Array();
      const cropped = (
        await pipeline.generate({
          ...req,
          micro: { originalSize: [128, 128], cropTopLeft: [8, 8], targetSize: [64, 64] },
        })
      ).images[0]?.rgb;
      expect(maxAbsDiff(plain, cropped ?? [])).toBeGreaterThan(0);
    });
  },
);
