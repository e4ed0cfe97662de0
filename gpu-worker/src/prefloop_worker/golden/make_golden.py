"""`make-golden`: fixtures for the Node pipeline, computed by diffusers/transformers/PyTorch.

Every tensor is stored inline as ``{"dtype", "shape", "b64"}`` (little-endian bytes, base64);
see tests/fixtures/golden/README.md for the files and what each one holds.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import numpy as np
import torch

PROMPTS = [
    "two small red circles on a blue background",
    "a large yellow square at the left on a purple background",
]
TOKENIZER_PROMPTS = [
    "",
    "two small red circles on a blue background",
    "Two Small RED Circles, on a blue background!!",
    "  a   large\tgreen\ntriangle   at the top on a white background  ",
    "a red circle on a blue background — ünïcödé 🎨 日本語 naïve café",
    "it's the circle's colour, isn't it? 3 red circles & 42 squares...",
    " ".join(["a large orange triangle at the bottom on a black background"] * 9),  # > 77 tokens
    "supercalifragilisticexpialidocious unknownword",
]


def tensor(x) -> dict:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    a = np.ascontiguousarray(a)
    dtype = {np.dtype(np.float32): "float32", np.dtype(np.int64): "int64", np.dtype(np.uint8): "uint8"}[a.dtype]
    return {"dtype": dtype, "shape": list(a.shape), "b64": base64.b64encode(a.astype(a.dtype.newbyteorder("<")).tobytes()).decode()}


def write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def tokenizer_fixture(model: Path) -> dict:
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(model / "tokenizer")
    cases = []
    for prompt in TOKENIZER_PROMPTS:
        padded = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids
        full = tok(prompt, truncation=False).input_ids
        cases.append({"prompt": prompt, "input_ids": padded, "untruncated_ids": full, "untruncated_length": len(full)})
    return {
        "tokenizer": "models/tiny-shapes/tokenizer/tokenizer.json",
        "max_length": tok.model_max_length,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "call": "CLIPTokenizer(prompt, padding='max_length', max_length=77, truncation=True).input_ids",
        "cases": cases,
    }


def randn_fixture() -> dict:
    cases = []
    for seed in (0, 1, 42, 1234, 2**32 - 1):
        for shape in ((1,), (3,), (15,), (16,), (17,), (2, 3), (4, 4, 4), (1, 4, 16, 16)):
            g = torch.Generator().manual_seed(seed)
            cases.append({"seed": seed, "shape": list(shape), "values": tensor(torch.randn(shape, generator=g))})
    # two draws from one generator (state carries over)
    g = torch.Generator().manual_seed(7)
    first, second = torch.randn((5,), generator=g), torch.randn((20,), generator=g)
    return {
        "call": "torch.randn(shape, generator=torch.Generator().manual_seed(seed)) (CPU, float32)",
        "note": "sizes < 16 and >= 16 take different code paths in torch's CPU normal sampler",
        "cases": cases,
        "sequence": {"seed": 7, "draws": [{"shape": [5], "values": tensor(first)}, {"shape": [20], "values": tensor(second)}]},
    }


SCHEDULER_CASES = [
    # name, class, config overrides, steps, generator seed (stochastic schedulers)
    ("ddim_leading", "DDIMScheduler", {}, 10, None),
    ("ddim_trailing", "DDIMScheduler", {"timestep_spacing": "trailing", "steps_offset": 0}, 10, None),
    ("ddim_linspace_alpha_one", "DDIMScheduler", {"timestep_spacing": "linspace", "set_alpha_to_one": True}, 7, None),
    ("euler_leading", "EulerDiscreteScheduler", {"timestep_spacing": "leading"}, 10, None),
    ("euler_linspace", "EulerDiscreteScheduler", {"timestep_spacing": "linspace"}, 10, None),
    ("euler_trailing", "EulerDiscreteScheduler", {"timestep_spacing": "trailing", "steps_offset": 0}, 6, None),
    ("euler_ancestral_leading", "EulerAncestralDiscreteScheduler", {"timestep_spacing": "leading"}, 10, 11),
    ("euler_ancestral_linspace", "EulerAncestralDiscreteScheduler", {"timestep_spacing": "linspace"}, 8, 12),
    ("lcm_4", "LCMScheduler", {}, 4, 13),
    ("lcm_2_trailing", "LCMScheduler", {"timestep_spacing": "trailing"}, 2, 14),
    ("dpmpp_2m", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}, 10, None),
]


def scheduler_fixture(model: Path) -> dict:
    import diffusers

    base = json.loads((model / "scheduler" / "scheduler_config.json").read_text())
    base = {k: v for k, v in base.items() if not k.startswith("_")}
    shape = (1, 4, 4, 4)
    cases = []
    for name, cls_name, overrides, steps, seed in SCHEDULER_CASES:
        cls = getattr(diffusers, cls_name)
        scheduler = cls.from_config({**base, **overrides})
        scheduler.set_timesteps(steps)
        g_in = torch.Generator().manual_seed(100)
        sample = torch.randn(shape, generator=g_in) * float(scheduler.init_noise_sigma)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        record = {
            "name": name,
            "class": cls_name,
            "config": {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")},
            "num_inference_steps": steps,
            "timesteps": tensor(scheduler.timesteps.to(torch.float32)),
            "timesteps_dtype": str(scheduler.timesteps.dtype).replace("torch.", ""),
            "init_noise_sigma": float(scheduler.init_noise_sigma),
            "generator_seed": seed,
            "initial_sample": tensor(sample),
            "steps": [],
        }
        if hasattr(scheduler, "sigmas") and scheduler.sigmas is not None:
            record["sigmas"] = tensor(torch.as_tensor(scheduler.sigmas, dtype=torch.float32))
        for i, t in enumerate(scheduler.timesteps):
            scaled = scheduler.scale_model_input(sample, t)
            model_output = torch.randn(shape, generator=g_in)
            kwargs = {"generator": generator} if generator is not None else {}
            out = scheduler.step(model_output, t, sample, return_dict=True, **kwargs)
            step = {
                "index": i,
                "timestep": float(t),
                "scaled_model_input": tensor(scaled),
                "model_output": tensor(model_output),
                "prev_sample": tensor(out.prev_sample),
            }
            for extra in ("pred_original_sample", "denoised"):
                value = getattr(out, extra, None)
                if value is not None:
                    step[extra] = tensor(value)
            record["steps"].append(step)
            sample = out.prev_sample
        cases.append(record)
    return {
        "input": "initial_sample = randn((1,4,4,4), Generator().manual_seed(100)) * init_noise_sigma; "
        "model_output of step i = next randn((1,4,4,4)) from the same generator",
        "loop": "for t in timesteps: scaled = scale_model_input(sample, t); "
        "sample = step(model_output, t, sample[, generator]).prev_sample",
        "cases": cases,
    }


def random_adapter(unet, rank: int = 4, alpha: int = 8, seed: int = 5):
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    unet.add_adapter(config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return config, get_peft_model_state_dict(unet)


def unet_fixture(model: Path, out: Path) -> dict:
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(model / "tokenizer")
    te = CLIPTextModel.from_pretrained(model / "text_encoder").eval()
    ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        te_out = te(ids)
    text = {
        "prompts": PROMPTS,
        "input_ids": tensor(ids),
        "last_hidden_state": tensor(te_out.last_hidden_state),
        "pooler_output": tensor(te_out.pooler_output),
    }
    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None)
    unet = pipe.unet.eval()
    g = torch.Generator().manual_seed(3)
    sample = torch.randn((2, 4, 16, 16), generator=g)
    timestep = torch.tensor([981.0, 1.0])
    hidden = te_out.last_hidden_state
    with torch.no_grad():
        base = unet(sample, timestep, hidden).sample
    config, state = random_adapter(unet)
    adapter_dir = out / "adapter"
    adapter_dir.mkdir(exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(adapter_dir, unet_lora_layers=state, unet_lora_adapter_metadata=config.to_dict())
    with torch.no_grad():
        adapted = unet(sample, timestep, hidden).sample
        adapted_half = unet(sample, timestep, hidden, cross_attention_kwargs={"scale": 0.5}).sample
    saved = load_file(str(adapter_dir / "pytorch_lora_weights.safetensors"))
    return text, {
        "inputs": {"sample": tensor(sample), "timestep": tensor(timestep), "encoder_hidden_states": "text_encoder.json last_hidden_state"},
        "encoder_hidden_states": tensor(hidden),
        "no_adapter": tensor(base),
        "adapter": {
            "file": "adapter/pytorch_lora_weights.safetensors",
            "rank": config.r,
            "alpha": config.lora_alpha,
            "scale": config.lora_alpha / config.r,
            "keys": sorted(saved.keys())[:8] + ["..."],
            "key_count": len(saved),
        },
        "with_adapter": tensor(adapted),
        "with_adapter_strength_0_5": tensor(adapted_half),
        "note": "with_adapter: peft applies B(A(x)) * alpha/rank; strength 0.5 via cross_attention_kwargs scale",
    }


def traced_run(pipe, seed: int, **call) -> tuple[list[dict], torch.Tensor, np.ndarray]:
    """One pipeline call, twice from the same seed: the latents after every step
    (`callback_on_step_end`) and the final latents (`output_type="latent"`), then the decoded
    image (`output_type="np"`)."""
    trace: list[dict] = []

    def on_step(p, i, t, kwargs):
        trace.append({"index": i, "timestep": float(t), "latents": tensor(kwargs["latents"])})
        return kwargs

    with torch.no_grad():
        latents = pipe(generator=torch.Generator().manual_seed(seed), output_type="latent", callback_on_step_end=on_step, **call).images
        image = pipe(generator=torch.Generator().manual_seed(seed), output_type="np", **call).images
    return trace, latents, image


def pipeline_fixture(model: Path, out: Path) -> dict:
    from diffusers import DDIMScheduler, EulerDiscreteScheduler, StableDiffusionPipeline

    runs = []
    for with_adapter in (False, True):
        pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None)
        pipe.set_progress_bar_config(disable=True)
        if with_adapter:
            pipe.load_lora_weights(out / "adapter")
        base_config = pipe.scheduler.config
        schedulers = {"DDIMScheduler": DDIMScheduler, "EulerDiscreteScheduler": EulerDiscreteScheduler}
        combos = [(p, s) for p in PROMPTS for s in schedulers] if not with_adapter else [(PROMPTS[0], "DDIMScheduler")]
        for index, (prompt, sched_name) in enumerate(combos):
            pipe.scheduler = schedulers[sched_name].from_config(base_config)
            seed = 1000 + index
            steps, guidance = 8, 5.0
            initial = torch.randn((1, 4, 16, 16), generator=torch.Generator().manual_seed(seed))
            trace_latent, latents, image = traced_run(
                pipe,
                seed,
                prompt=prompt,
                negative_prompt="",
                num_inference_steps=steps,
                guidance_scale=guidance,
                height=64,
                width=64,
            )
            runs.append(
                {
                    "prompt": prompt,
                    "negative_prompt": "",
                    "scheduler": sched_name,
                    "scheduler_config": {k: v for k, v in dict(pipe.scheduler.config).items() if not k.startswith("_")},
                    "seed": seed,
                    "num_inference_steps": steps,
                    "guidance_scale": guidance,
                    "adapter": "adapter/pytorch_lora_weights.safetensors (strength 1)" if with_adapter else None,
                    "initial_noise": tensor(initial),
                    "initial_latents": tensor(initial * pipe.scheduler.init_noise_sigma),
                    "latents_after_step": trace_latent,
                    "final_latents": tensor(latents),
                    "image_float": tensor(image[0]),
                    "image_uint8": tensor((image[0] * 255).round().astype(np.uint8)),
                }
            )
    return {
        "call": "StableDiffusionPipeline(prompt, negative_prompt='', num_inference_steps, guidance_scale, "
        "height=64, width=64, generator=torch.Generator().manual_seed(seed))",
        "initial_latents": "randn((1,4,16,16), generator seeded with seed) * scheduler.init_noise_sigma",
        "image_float": "HWC float in [0,1] = clamp(decode(latents/scaling)/2+0.5); image_uint8 = round(x*255)",
        "runs": runs,
    }


def judge_fixture(pipeline: dict) -> dict:
    from PIL import Image, ImageFilter

    from ..shapes import caption_of, heldout_scenes, render_scene, sample_scene
    from ..shapes.grammar import Mulberry32, all_scenes, fnv1a32
    from ..shapes.judge import judge_pixels

    images = []
    for i, seed in enumerate((0, 1, 2, 3, 5, 8)):
        scene = sample_scene(seed)
        images.append((f"render seed {seed}", caption_of(scene), render_scene(scene, seed)))
        if i < 2:
            images.append((f"render seed {seed}, blurred", caption_of(scene), render_scene(scene, seed).filter(ImageFilter.GaussianBlur(1.5))))
    wrong = sample_scene(4)
    images.append(("render of seed 4 judged against seed 9's caption", caption_of(sample_scene(9)), render_scene(wrong, 4)))
    rng = np.random.default_rng(0)
    noisy = np.asarray(render_scene(sample_scene(6), 6)).astype(np.int16) + rng.integers(-40, 41, (64, 64, 3))
    images.append(("render seed 6 + uniform noise", caption_of(sample_scene(6)), Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))))
    for run in pipeline["runs"]:
        raw = base64.b64decode(run["image_uint8"]["b64"])
        images.append((f"tiny model: {run['scheduler']} seed {run['seed']}", run["prompt"], Image.frombytes("RGB", (64, 64), raw)))
    cases = []
    for name, caption, image in images:
        rgb = image.convert("RGB")
        rgba = rgb.convert("RGBA")
        score = judge_pixels(rgba.tobytes(), 64, 64, 4, caption)
        cases.append({"name": name, "caption": caption, "rgba": tensor(np.asarray(rgba)), "expected": score.to_dict()})
    rng32 = Mulberry32(42)
    return {
        "grammar": {
            "scene_count": len(all_scenes()),
            "heldout_count": len(heldout_scenes()),
            "first_heldout": [caption_of(s) for s in heldout_scenes(20)],
            "sample_scene": [caption_of(sample_scene(seed)) for seed in range(100)],
            "mulberry32_seed_42": [rng32.next_u32() for _ in range(10)],
            "fnv1a32": {t: fnv1a32(t) for t in ("", "a", "two small red circles on a blue background", "ünï")},
        },
        "judge": {"image_format": "rgba uint8 [64,64,4]", "cases": cases},
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="models/tiny-shapes")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(2)
    model, out = Path(args.model), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write(out / "tokenizer.json", tokenizer_fixture(model))
    write(out / "randn.json", randn_fixture())
    write(out / "schedulers.json", scheduler_fixture(model))
    text, unet = unet_fixture(model, out)
    write(out / "text_encoder.json", text)
    write(out / "unet.json", unet)
    pipeline = pipeline_fixture(model, out)
    write(out / "pipelines.json", pipeline)
    write(out / "shapes.json", judge_fixture(pipeline))
    return 0
