from pathlib import Path

import json

import pytest

import torch

from prefloop_worker.shapes import judge
from prefloop_worker.tiny.checksums import verify_checksums

REPO = Path(__file__).resolve().parents[2]


def test_checksums_match(tiny_model_dir, tiny_onnx_dir):
    assert verify_checksums(tiny_model_dir) == []
    assert verify_checksums(tiny_onnx_dir) == []


def test_models_folder_fits_the_budget():
    total = sum(p.stat().st_size for p in (REPO / "models").rglob("*") if p.is_file())
    assert total <= 80 * 1024 * 1024, f"models/ is {total / 2**20:.1f} MiB"


def test_recorded_training_and_evaluation(tiny_model_dir):
    training = json.loads((tiny_model_dir / "training.json").read_text())
    assert training["settings"]["seed"] and training["command"].startswith("python -m prefloop_worker make-tiny-model")
    evaluation = json.loads((tiny_model_dir / "evaluation.json").read_text())
    assert evaluation["n"] == 200 and 0.0 <= evaluation["colour_match_rate"] <= 1.0
    assert (tiny_model_dir / "contact_sheet.png").exists()


def test_colour_match_target_is_reproduced(tiny_model_dir):
    """Regenerate all 200 held-out prompts exactly as evaluate-tiny does, judge them again, and check
    both the ≥ 70 % target and the numbers recorded in evaluation.json (about 30 s on two cores)."""
    from diffusers import StableDiffusionPipeline

    from prefloop_worker.shapes import caption_of, heldout_scenes
    from prefloop_worker.tiny.evaluate import generate

    evaluation = json.loads((tiny_model_dir / "evaluation.json").read_text())
    settings, n = evaluation["settings"], evaluation["n"]
    assert n == 200
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    prompts = [caption_of(s) for s in heldout_scenes(n)]
    images = generate(pipe, prompts, list(range(n)), settings["steps"], settings["guidance_scale"], batch=evaluation["batch"])
    verdicts = [judge(image, prompt).colour_match for image, prompt in zip(images, prompts, strict=True)]
    rate = sum(verdicts) / n
    assert rate >= 0.70, f"colour match {rate:.3f} < 0.70"
    recorded = evaluation["per_prompt"]
    assert [r["caption"] for r in recorded] == prompts
    assert sum(r["colour"] for r in recorded) / n == evaluation["colour_match_rate"]
    # CPU float results can differ in the last bits across machines; allow a judge flip or two
    differ = sum(r["colour"] != v for r, v in zip(recorded, verdicts, strict=True))
    assert differ <= 2, f"{differ} of {n} colour verdicts differ from evaluation.json"


def test_pipeline_from_pretrained_generates_images(tiny_model_dir):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.tokenizer.model_max_length == 77
    prompts = ["two small red circles on a blue background", "a large yellow square at the left on a purple background"]
    out = pipe(prompts, num_inference_steps=10, guidance_scale=4.0, height=64, width=64,
               generator=[torch.Generator().manual_seed(i) for i in range(2)])
    assert [im.size for im in out.images] == [(64, 64), (64, 64)]
    scores = [judge(im, p) for im, p in zip(out.images, prompts, strict=True)]
    assert all(0.0 <= s.score <= 1.0 for s in scores)
