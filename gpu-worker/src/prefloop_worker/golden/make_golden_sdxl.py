"""`make-golden-sdxl`: fixtures for the Node SDXL pipeline, computed by diffusers/transformers/PyTorch.

Same tensor encoding as `make-golden` (``{"dtype", "shape", "b64"}``); see
tests/fixtures/golden-sdxl/README.md for the files and what each one holds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .make_golden import PROMPTS, random_adapter, tensor, traced_run, write

TEXT_PROMPTS = [*PROMPTS, "", "a green background"]
NEGATIVE_PROMPT = "a green background"
TIME_IDS = [[64, 64, 0, 0, 64, 64], [128, 96, 8, 4, 64, 64]]
STEPS, GUIDANCE, SIZE = 8, 5.0, 64

# name, prompt, negative prompt, scheduler, adapter, (original_size, crops_coords_top_left, target_size) or None
RUNS = [
    ("euler_zero_negative_a", PROMPTS[0], None, "EulerDiscreteScheduler", False, None),
    ("euler_zero_negative_b", PROMPTS[1], None, "EulerDiscreteScheduler", False, None),
    ("euler_negative_text", PROMPTS[0], NEGATIVE_PROMPT, "EulerDiscreteScheduler", False, None),
    ("ddim_zero_negative", PROMPTS[1], None, "DDIMScheduler", False, None),
    ("euler_adapter", PROMPTS[0], None, "EulerDiscreteScheduler", True, None),
    ("euler_micro_conditioning", PROMPTS[0], None, "EulerDiscreteScheduler", False, ((128, 128), (8, 8), (64, 64))),
]


def load_pipeline(model: Path):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(model, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def text_encoders_fixture(model: Path) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """(fixture, prompt_embeds, pooled_prompt_embeds) for TEXT_PROMPTS."""
    pipe = load_pipeline(model)
    ids = [
        tok(TEXT_PROMPTS, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
        for tok in (pipe.tokenizer, pipe.tokenizer_2)
    ]
    with torch.no_grad():
        prompt_embeds, negative, pooled, negative_pooled = pipe.encode_prompt(TEXT_PROMPTS, do_classifier_free_guidance=False)
        out_1 = pipe.text_encoder(ids[0], output_hidden_states=True)
        out_2 = pipe.text_encoder_2(ids[1], output_hidden_states=True)
        zeros, zeros_negative, _, zeros_negative_pooled = pipe.encode_prompt(
            TEXT_PROMPTS[:1], do_classifier_free_guidance=True, negative_prompt=None
        )
    assert negative is None and negative_pooled is None
    assert not zeros_negative.any() and not zeros_negative_pooled.any(), "force_zeros_for_empty_prompt gave non-zero embeds"
    fixture = {
        "prompts": TEXT_PROMPTS,
        "tokenizer": {"input_ids": tensor(ids[0]), "pad_token_id": pipe.tokenizer.pad_token_id},
        "tokenizer_2": {"input_ids": tensor(ids[1]), "pad_token_id": pipe.tokenizer_2.pad_token_id},
        "text_encoder": {"penultimate_hidden_state": tensor(out_1.hidden_states[-2])},
        "text_encoder_2": {"penultimate_hidden_state": tensor(out_2.hidden_states[-2]), "text_embeds": tensor(out_2.text_embeds)},
        "prompt_embeds": tensor(prompt_embeds),
        "pooled_prompt_embeds": tensor(pooled),
        "call": "prompt_embeds, _, pooled_prompt_embeds, _ = StableDiffusionXLPipeline.encode_prompt(prompts, "
        "do_classifier_free_guidance=False); input_ids = tokenizer(prompts, padding='max_length', max_length=77, "
        "truncation=True); penultimate_hidden_state = encoder(input_ids, output_hidden_states=True).hidden_states[-2]",
        "note": "prompt_embeds = concat(text_encoder penultimate, text_encoder_2 penultimate) on the last axis; "
        "pooled_prompt_embeds = text_encoder_2 text_embeds. With negative_prompt=None and "
        "force_zeros_for_empty_prompt the unconditional prompt_embeds and pooled_prompt_embeds are zeros.",
    }
    return fixture, prompt_embeds, pooled


def unet_fixture(model: Path, out: Path, prompt_embeds: torch.Tensor, pooled: torch.Tensor) -> dict:
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from safetensors import safe_open

    unet = UNet2DConditionModel.from_pretrained(model / "unet").eval()
    g = torch.Generator().manual_seed(3)
    sample = torch.randn((2, 4, 16, 16), generator=g)
    timestep = torch.tensor([981.0, 1.0])
    hidden = prompt_embeds[:2]
    text_embeds = pooled[:2]
    time_ids = torch.tensor(TIME_IDS, dtype=torch.float32)
    added = {"text_embeds": text_embeds, "time_ids": time_ids}
    with torch.no_grad():
        base = unet(sample, timestep, hidden, added_cond_kwargs=added).sample
    config, state = random_adapter(unet)
    adapter_dir = out / "adapter"
    adapter_dir.mkdir(exist_ok=True)
    StableDiffusionXLPipeline.save_lora_weights(adapter_dir, unet_lora_layers=state, unet_lora_adapter_metadata=config.to_dict())
    with torch.no_grad():
        adapted = unet(sample, timestep, hidden, added_cond_kwargs=added).sample
        adapted_half = unet(sample, timestep, hidden, added_cond_kwargs=added, cross_attention_kwargs={"scale": 0.5}).sample
    with safe_open(str(adapter_dir / "pytorch_lora_weights.safetensors"), "pt") as f:
        keys = sorted(f.keys())
    return {
        "inputs": {
            "sample": tensor(sample),
            "timestep": tensor(timestep),
            "encoder_hidden_states": tensor(hidden),
            "text_embeds": tensor(text_embeds),
            "time_ids": tensor(time_ids),
        },
        "inputs_from": "encoder_hidden_states / text_embeds = text_encoders.json prompt_embeds / pooled_prompt_embeds "
        "of its first two prompts; time_ids row 0 = (64,64, 0,0, 64,64), row 1 = (128,96, 8,4, 64,64)",
        "no_adapter": tensor(base),
        "adapter": {
            "file": "adapter/pytorch_lora_weights.safetensors",
            "rank": config.r,
            "alpha": config.lora_alpha,
            "scale": config.lora_alpha / config.r,
            "keys": keys[:8] + ["..."],
            "key_count": len(keys),
        },
        "with_adapter": tensor(adapted),
        "with_adapter_strength_0_5": tensor(adapted_half),
        "call": "unet(sample, timestep, encoder_hidden_states, added_cond_kwargs={'text_embeds': ..., 'time_ids': ...}).sample",
        "note": "with_adapter: peft applies B(A(x)) * alpha/rank; strength 0.5 via cross_attention_kwargs scale",
    }


def pipeline_fixture(model: Path, out: Path) -> dict:
    from diffusers import DDIMScheduler, EulerDiscreteScheduler

    schedulers = {"DDIMScheduler": DDIMScheduler, "EulerDiscreteScheduler": EulerDiscreteScheduler}
    runs = []
    for index, (name, prompt, negative, sched_name, with_adapter, micro) in enumerate(RUNS):
        pipe = load_pipeline(model)
        if with_adapter:
            pipe.load_lora_weights(out / "adapter")
        pipe.scheduler = schedulers[sched_name].from_config(pipe.scheduler.config)
        seed = 2000 + index
        original_size, crops, target_size = micro or ((SIZE, SIZE), (0, 0), (SIZE, SIZE))
        initial = torch.randn((1, 4, SIZE // 4, SIZE // 4), generator=torch.Generator().manual_seed(seed))
        trace_latent, latents, image = traced_run(
            pipe,
            seed,
            prompt=prompt,
            negative_prompt=negative,
            num_inference_steps=STEPS,
            guidance_scale=GUIDANCE,
            height=SIZE,
            width=SIZE,
            original_size=original_size,
            crops_coords_top_left=crops,
            target_size=target_size,
        )
        runs.append(
            {
                "name": name,
                "prompt": prompt,
                "negative_prompt": negative,
                "scheduler": sched_name,
                "scheduler_config": {k: v for k, v in dict(pipe.scheduler.config).items() if not k.startswith("_")},
                "timesteps": [float(t) for t in pipe.scheduler.timesteps],
                "init_noise_sigma": float(pipe.scheduler.init_noise_sigma),
                "seed": seed,
                "num_inference_steps": STEPS,
                "guidance_scale": GUIDANCE,
                "original_size": list(original_size),
                "crops_coords_top_left": list(crops),
                "target_size": list(target_size),
                "add_time_ids": [*original_size, *crops, *target_size],
                "adapter": "adapter/pytorch_lora_weights.safetensors (strength 1)" if with_adapter else None,
                "initial_noise": tensor(initial),
                "initial_latents": tensor(initial * pipe.scheduler.init_noise_sigma),
                "latents_after_step": trace_latent,
                "final_latents": tensor(latents),
                "image_float": tensor(image[0]),
                "image_uint8": tensor((image[0] * 255).round().astype(np.uint8)),
            }
        )
        print(f"pipeline run {name}: done")
    return {
        "call": "StableDiffusionXLPipeline(prompt, negative_prompt, num_inference_steps=8, guidance_scale=5, height=64, "
        "width=64, original_size, crops_coords_top_left, target_size, generator=torch.Generator().manual_seed(seed))",
        "pipeline": "StableDiffusionXLPipeline.from_pretrained(model, add_watermarker=False); the scheduler is "
        "<scheduler>.from_config(pipe.scheduler.config) (the model's EulerDiscreteScheduler config)",
        "initial_latents": "randn((1,4,16,16), generator seeded with seed) * scheduler.init_noise_sigma",
        "add_time_ids": "original_size + crops_coords_top_left + target_size, the same for both CFG halves",
        "image_float": "HWC float in [0,1] = clamp(decode(latents/scaling)/2+0.5); image_uint8 = round(x*255)",
        "runs": runs,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="models/tiny-sdxl-shapes")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    from ..family import model_family

    torch.set_num_threads(args.threads)
    model, out = Path(args.model), Path(args.out)
    if not model_family(model).is_sdxl:
        raise SystemExit(f"{model} is not an SDXL pipeline folder (make-golden writes the SD fixtures)")
    out.mkdir(parents=True, exist_ok=True)
    text, prompt_embeds, pooled = text_encoders_fixture(model)
    write(out / "text_encoders.json", text)
    write(out / "unet.json", unet_fixture(model, out, prompt_embeds, pooled))
    write(out / "pipelines.json", pipeline_fixture(model, out))
    return 0
