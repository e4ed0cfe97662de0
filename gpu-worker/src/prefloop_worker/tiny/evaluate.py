"""`evaluate-tiny`: judge a shapes model on held-out prompts and draw a contact sheet.

Any pipeline folder of a supported family (SD 1.x/2.x or SDXL: the folder's model_index.json says
which), sampled with the folder's own scheduler.

Writes ``evaluation.json`` (colour-match rate and the other judge rates) and ``contact_sheet.png``
(rows = prompts, columns = seeds; the first column is the reference rendering) into the model folder.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..family import model_family
from ..shapes import caption_of, heldout_scenes, judge, render_scene

EVAL_SETTINGS = {"steps": 20, "guidance_scale": 4.0, "seed_base": 0}


EVAL_BATCH = 50


def generate(pipe, prompts: list[str], seeds: list[int], steps: int, guidance: float, batch: int = EVAL_BATCH) -> list[Image.Image]:
    images: list[Image.Image] = []
    for i in range(0, len(prompts), batch):
        chunk, chunk_seeds = prompts[i : i + batch], seeds[i : i + batch]
        generators = [torch.Generator().manual_seed(s) for s in chunk_seeds]
        out = pipe(chunk, num_inference_steps=steps, guidance_scale=guidance, height=64, width=64, generator=generators)
        images += out.images
    return images


def load_pipeline(model_dir: str | Path):
    """The folder's own pipeline class (model_index.json), progress bars off."""
    family = model_family(model_dir)
    extra = {"safety_checker": None} if family.name == "sd" else {}
    pipe = family.pipeline_class().from_pretrained(model_dir, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def evaluate(model_dir: str | Path, prompts_count: int = 200, steps: int = 20, guidance: float = 4.0,
             threads: int = 2) -> dict:
    torch.set_num_threads(threads)
    model_dir = Path(model_dir)
    pipe = load_pipeline(model_dir)
    scenes = heldout_scenes(prompts_count)
    prompts = [caption_of(s) for s in scenes]
    started = time.time()
    images = generate(pipe, prompts, list(range(len(prompts))), steps, guidance)
    scores = [judge(img, p) for img, p in zip(images, prompts, strict=True)]
    positioned = [s for s in scores if s.position_match is not None]
    rate = lambda xs: round(float(np.mean(xs)), 4)  # noqa: E731
    result = {
        "prompts": f"first {len(prompts)} held-out captions (prefloop_worker.shapes.heldout_scenes), never seen in training",
        "pipeline": type(pipe).__name__,
        "settings": {"scheduler": f"{type(pipe.scheduler).__name__} (model default)", **EVAL_SETTINGS, "steps": steps,
                     "guidance_scale": guidance, "seeds": "seed i for prompt i"},
        "n": len(prompts),
        "colour_match_rate": rate([s.colour_match for s in scores]),
        "background_match_rate": rate([s.background_match for s in scores]),
        "shape_match_rate": rate([s.shape_match for s in scores]),
        "count_match_rate": rate([s.count_match for s in scores]),
        "position_match_rate": rate([bool(s.position_match) for s in positioned]),
        "mean_sharpness": rate([s.sharpness for s in scores]),
        "mean_score": rate([s.score for s in scores]),
        "reference_renders_mean_score": rate(
            [judge(render_scene(s, i), p).score for i, (s, p) in enumerate(zip(scenes, prompts, strict=True))]
        ),
        "seconds": round(time.time() - started, 1),
        "command": f"python -m prefloop_worker evaluate-tiny --model {model_dir} --prompts {prompts_count}"
        + (f" --threads {threads}" if threads != 2 else ""),
        "batch": EVAL_BATCH,
        # per prompt, so a test can regenerate a batch and check these numbers were not typed in
        "per_prompt": [
            {"caption": p, "colour": s.colour_match, "background": s.background_match, "shape": s.shape_match,
             "score": round(float(s.score), 4)}
            for p, s in zip(prompts, scores, strict=True)
        ],
    }
    (model_dir / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    contact_sheet(pipe, scenes[:10], seeds=[0, 1, 2, 3, 4, 5], steps=steps, guidance=guidance).save(model_dir / "contact_sheet.png")
    return result


def contact_sheet(pipe, scenes, seeds, steps: int, guidance: float) -> Image.Image:
    cell, label_w = 64, 330
    sheet = Image.new("RGB", (label_w + cell * (len(seeds) + 1) + 8, cell * len(scenes) + 16), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((label_w, 2), "reference | seeds " + ", ".join(map(str, seeds)), fill=(0, 0, 0))
    prompts = [caption_of(s) for s in scenes]
    flat_prompts = [p for p in prompts for _ in seeds]
    flat_seeds = [s for _ in prompts for s in seeds]
    images = generate(pipe, flat_prompts, flat_seeds, steps, guidance)
    for row, (scene, prompt) in enumerate(zip(scenes, prompts, strict=True)):
        y = 16 + row * cell
        draw.text((4, y + cell // 2 - 6), prompt, fill=(0, 0, 0))
        sheet.paste(render_scene(scene, 0), (label_w, y))
        for col in range(len(seeds)):
            sheet.paste(images[row * len(seeds) + col], (label_w + 8 + cell * (col + 1), y))
    return sheet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="models/tiny-shapes")
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2)


def run(args: argparse.Namespace) -> int:
    result = evaluate(args.model, args.prompts, args.steps, args.guidance, args.threads)
    print(json.dumps(result, indent=2))
    return 0
