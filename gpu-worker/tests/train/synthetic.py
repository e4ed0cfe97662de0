"""Test material for the trainer: a tiny SD-shaped model with random weights and a synthetic
preference snapshot (the winner has the prompt's object colour, the loser a wrong one)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from prefloop_worker.shapes import COLOURS as WORLD_COLOURS
from prefloop_worker.shapes import Scene, caption_of, render_scene, sample_scene

REPO = Path(__file__).resolve().parents[3]
TINY_SHAPES = Path(os.environ.get("PREFLOOP_TINY_MODEL") or REPO / "models" / "tiny-shapes")
TINY_SDXL = Path(os.environ.get("PREFLOOP_TINY_SDXL_MODEL") or REPO / "models" / "tiny-sdxl-shapes")


def tiny_shapes_ready() -> bool:
    return (TINY_SHAPES / "unet" / "config.json").exists() and (TINY_SHAPES / "tokenizer").exists()


def tiny_sdxl_ready() -> bool:
    return (TINY_SDXL / "unet" / "config.json").exists() and (TINY_SDXL / "tokenizer_2").exists()


def _tokenizer(path: Path):
    from transformers import CLIPTokenizer

    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789.,-'"))
    vocab = {}
    for tok in ["!", *chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]:
        vocab.setdefault(tok, len(vocab))
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), model_max_length=77)
    return tok, len(vocab)


def build_random_sd(path: Path, seed: int = 0) -> Path:
    """A StableDiffusionPipeline-loadable folder: 64×64 images, 4×16×16 latents, random weights."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer, vocab_size = _tokenizer(path / "_tok")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
    ))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64, layers_per_block=1,
        block_out_channels=(16, 32, 32), norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
    )
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
    )
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(path)
    return path


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def render(colour: str, shape: str, background: str) -> bytes:
    """PNG of one large object in the center, drawn by the shapes world's own renderer."""
    return _png(render_scene(Scene(1, "large", colour, shape, background, "center")))


def write_snapshot(path: Path, rows) -> Path:
    """Rows → one Parquet file; every key of any row is a column (null where a row lacks it:
    ``Table.from_pylist`` alone takes the columns from the first row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    pq.write_table(pa.Table.from_pylist([{k: row.get(k) for k in keys} for row in rows]), path)
    return path


def shapes_rows(n: int, seed: int = 0, start_id: int = 0):
    """Pick-a-Pic v2 style rows from the shapes world the tiny model was trained on: grammar
    captions, the world's renderer; the loser is the same scene with a wrong object colour."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for k in range(n):
        i = start_id + k
        scene = sample_scene(seed * 100_003 + i)
        wrong_choices = [c for c in WORLD_COLOURS if c not in (scene.colour, scene.background)]
        wrong = wrong_choices[int(torch.randint(0, len(wrong_choices), (1,), generator=g))]
        good = render_scene(scene, seed=i)
        bad = render_scene(dataclasses.replace(scene, colour=wrong), seed=i)
        enc = [_png(good), _png(bad)]
        winner_left = bool(int(torch.randint(0, 2, (1,), generator=g)))
        rows.append({
            "caption": caption_of(scene),
            "jpg_0": enc[0] if winner_left else enc[1],
            "jpg_1": enc[1] if winner_left else enc[0],
            "label_0": 1.0 if winner_left else 0.0,
            "label_1": 0.0 if winner_left else 1.0,
            "model_0": "tiny-shapes", "model_1": "tiny-shapes",
            "user_id": i % 7, "ranking_id": i, "created_at": "2026-11-21T00:00:00Z",
            "are_different": True, "has_label": True,
            "image_0_uid": f"img-{i}-a", "image_1_uid": f"img-{i}-b",
            "seed": i, "qc_flagged": False,
        })
    return rows


def both_bad_rows(n: int, seed: int = 0, start_id: int = 0):
    """Both-bad votes as the platform exports them: two images of the caption's scene, each with a
    wrong object colour; ``vote = both_bad``, labels 0.5/0.5, ``has_label`` false."""
    g = torch.Generator().manual_seed(seed + 99)
    rows = []
    for k in range(n):
        i = start_id + k
        scene = sample_scene(seed * 100_003 + i)
        wrong = [c for c in WORLD_COLOURS if c not in (scene.colour, scene.background)]
        a, b = torch.randperm(len(wrong), generator=g)[:2].tolist()
        images = [_png(render_scene(dataclasses.replace(scene, colour=wrong[j]), seed=i)) for j in (a, b)]
        rows.append({
            "caption": caption_of(scene), "jpg_0": images[0], "jpg_1": images[1], "label_0": 0.5, "label_1": 0.5,
            "model_0": "tiny-shapes", "model_1": "tiny-shapes", "user_id": i % 7, "ranking_id": i,
            "created_at": "2026-11-21T00:00:00Z", "are_different": True, "has_label": False,
            "image_0_uid": f"img-{i}-c", "image_1_uid": f"img-{i}-d", "seed": i, "qc_flagged": False, "vote": "both_bad",
        })
    return rows
