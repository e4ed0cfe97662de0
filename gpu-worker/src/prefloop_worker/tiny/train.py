"""Train a tiny shapes model from scratch: VAE first, then UNet + text encoder(s) on its latents.

One reproducible command (``python -m prefloop_worker make-tiny-model``): everything is seeded,
the settings and the data description are written to ``training.json`` in the output folder.
``--family sd`` (default) builds the SD 1.x-shaped ``tiny-shapes``; ``--family sdxl`` the
SDXL-shaped ``tiny-sdxl-shapes`` (two text encoders, pooled text embeds and time ids). Data,
VAE, tokenizer and the training loop are the same; only the conditioning differs.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..conditioning import encode_sdxl_prompts, time_ids, tokenize
from ..shapes.grammar import Mulberry32, caption_of, training_scenes
from ..shapes.render import render_scene
from .architecture import (
    SCHEDULER_CONFIG,
    SDXL_SCHEDULER_CONFIG,
    SDXL_UNET_CONFIG,
    UNET_CONFIG,
    VAE_CONFIG,
    sdxl_text_encoder_configs,
    text_encoder_config,
)
from .tokenizer import build_clip_tokenizer


@dataclass
class TrainSettings:
    seed: int = 1234
    images: int = 16384
    vae_steps: int = 600
    vae_batch: int = 16
    vae_lr: float = 2e-3
    unet_steps: int = 1500
    unet_batch: int = 32
    unet_lr: float = 1e-3
    caption_dropout: float = 0.1
    offset_noise: float = 0.3
    threads: int = 2
    family: str = "sd"  # sd: SD 1.x-shaped (tiny-shapes); sdxl: SDXL-shaped (tiny-sdxl-shapes)
    # Cache, not a setting: a folder from an earlier run with the same seed/images/vae_* settings;
    # its VAE is the one this run would train (the VAE stage is deterministic), so skip training it.
    reuse_vae: str = ""

    VAE_KEYS = ("seed", "images", "vae_steps", "vae_batch", "vae_lr")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def make_dataset(count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """`count` rendered training images (uint8 N,64,64,3) and their captions; held-out captions excluded."""
    scenes = training_scenes()
    rng = Mulberry32(seed)
    images = np.empty((count, 64, 64, 3), dtype=np.uint8)
    captions = []
    for i in range(count):
        scene = scenes[rng.below(len(scenes))]
        images[i] = np.asarray(render_scene(scene, rng.next_u32()))
        captions.append(caption_of(scene))
    return images, captions


OBJECT_WEIGHT = 10.0


def cosine_lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_vae(vae, images: torch.Tensor, settings: TrainSettings, device: str, generator: torch.Generator):
    vae.train()
    # Start with a nearly deterministic posterior (std ~ 0.05): with a small KL weight the encoder
    # would otherwise spend most of a short training shrinking std from 1 while noise hides the signal.
    with torch.no_grad():
        latent = vae.config.latent_channels
        vae.quant_conv.bias[latent:] = -6.0
    opt = torch.optim.AdamW(vae.parameters(), lr=settings.vae_lr, weight_decay=0.0)
    for step in range(settings.vae_steps):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, settings.vae_steps, settings.vae_lr)
        idx = torch.randint(0, images.shape[0], (settings.vae_batch,), generator=generator)
        x = images[idx].to(device)
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator).to(device)
        recon = vae.decode(z).sample
        # Objects cover a small share of the pixels: weight pixels that differ from the corner
        # (background) colour so object colours are reconstructed as well as backgrounds.
        weight = 1.0 + OBJECT_WEIGHT * ((x - x[:, :, :1, :1]).abs().amax(dim=1, keepdim=True) > 0.1).float()
        rec = ((recon - x).abs() * weight).mean() + ((recon - x).pow(2) * weight).mean()
        kl = posterior.kl().mean() / z[0].numel()
        loss = rec + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == settings.vae_steps - 1:
            log(f"vae step {step} rec {rec.item():.4f} kl/elem {kl.item():.3f}")
    vae.eval()


@torch.no_grad()
def vae_reconstruction_check(vae, device: str, count: int = 64) -> dict:
    """Judge the VAE's reconstructions of held-out reference renders (an upper bound for the model)."""
    from PIL import Image

    from ..shapes import caption_of, heldout_scenes, judge

    scenes = heldout_scenes(count)
    refs = np.stack([np.asarray(render_scene(s, i)) for i, s in enumerate(scenes)])
    x = torch.from_numpy(refs).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).to(device)
    out = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1).add(1).mul(127.5).round().byte()
    out = out.permute(0, 2, 3, 1).cpu().numpy()
    scores = [judge(Image.fromarray(o), caption_of(s)) for o, s in zip(out, scenes, strict=True)]
    return {
        "images": count,
        "mean_abs_error_0_255": round(float(np.abs(out.astype(np.float64) - refs).mean()), 3),
        "colour_match_rate": float(np.mean([s.colour_match for s in scores])),
        "background_match_rate": float(np.mean([s.background_match for s in scores])),
        "shape_match_rate": float(np.mean([s.shape_match for s in scores])),
    }


@torch.no_grad()
def encode_all(vae, images: torch.Tensor, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    means, stds = [], []
    for i in range(0, images.shape[0], 256):
        posterior = vae.encode(images[i : i + 256].to(device)).latent_dist
        means.append(posterior.mean.cpu())
        stds.append(posterior.std.cpu())
    return torch.cat(means), torch.cat(stds)


def index_captions(captions: list[str]) -> tuple[list[str], torch.Tensor, int]:
    """Distinct captions (sorted, then the empty one), each training image's index into them, and
    the empty caption's index."""
    unique = sorted(set(captions)) + [""]
    index_of = {c: i for i, c in enumerate(unique)}
    return unique, torch.tensor([index_of[c] for c in captions]), index_of[""]


class SDConditioner:
    """SD 1.x: the text encoder's last hidden state; a dropped caption is the empty caption."""

    def __init__(self, text_encoder, tokenizer, captions: list[str], device: str):
        self.text_encoder, self.device = text_encoder, device
        unique, self.caption_index, self.empty = index_captions(captions)
        self.ids = tokenize(tokenizer, unique)

    def modules(self) -> list[torch.nn.Module]:
        return [self.text_encoder]

    def __call__(self, idx: torch.Tensor, drop: torch.Tensor):
        cap = self.caption_index[idx].clone()
        cap[drop] = self.empty
        return self.text_encoder(self.ids[cap].to(self.device)).last_hidden_state, None


class SDXLConditioner:
    """SDXL: both encoders' penultimate hidden states, the second's pooled output and the time ids
    (:mod:`prefloop_worker.conditioning`). A dropped caption is all zeros, hidden and pooled: what
    the pipeline feeds as the unconditional input (``force_zeros_for_empty_prompt``)."""

    def __init__(self, text_encoders, tokenizers, captions: list[str], device: str, size: int):
        self.text_encoders, self.device = list(text_encoders), device
        unique, self.caption_index, _ = index_captions(captions)
        self.ids = [tokenize(t, unique) for t in tokenizers]
        # every training image is a whole render at the model's size: no resize, no crop
        self.time_ids = time_ids([(size, size)], [(0, 0)], (size, size))

    def modules(self) -> list[torch.nn.Module]:
        return self.text_encoders

    def __call__(self, idx: torch.Tensor, drop: torch.Tensor):
        cap = self.caption_index[idx]
        hidden, pooled = encode_sdxl_prompts(self.text_encoders, [ids[cap].to(self.device) for ids in self.ids])
        keep = (~drop).to(self.device, hidden.dtype)
        added = {"text_embeds": pooled * keep[:, None], "time_ids": self.time_ids.expand(len(idx), -1).to(self.device)}
        return hidden * keep[:, None, None], added


def train_unet(unet, conditioner, scheduler, latents, latent_stds, settings, device, generator):
    modules = [unet, *conditioner.modules()]
    for module in modules:
        module.train()
    params = [p for module in modules for p in module.parameters()]
    opt = torch.optim.AdamW(params, lr=settings.unet_lr, weight_decay=1e-2)
    alphas = scheduler.alphas_cumprod.to(device)
    for step in range(settings.unet_steps):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, settings.unet_steps, settings.unet_lr)
        idx = torch.randint(0, latents.shape[0], (settings.unet_batch,), generator=generator)
        noise_latent = torch.randn(latents[idx].shape, generator=generator)
        x0 = (latents[idx] + latent_stds[idx] * noise_latent) * scheduler_scaling(unet)
        drop = torch.rand(settings.unet_batch, generator=generator) < settings.caption_dropout
        t = torch.randint(0, scheduler.config.num_train_timesteps, (settings.unet_batch,), generator=generator)
        eps = torch.randn(x0.shape, generator=generator)
        # Offset noise: a per-sample, per-channel constant in the noise, so the model cannot read the
        # background colour from the mean of x_t near t=T (the signal that survives SD's schedule).
        eps = eps + settings.offset_noise * torch.randn((x0.shape[0], x0.shape[1], 1, 1), generator=generator)
        a = alphas[t.to(device)].view(-1, 1, 1, 1)
        x0, eps = x0.to(device), eps.to(device)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        hidden, added = conditioner(idx, drop)
        pred = unet(xt, t.to(device), hidden, added_cond_kwargs=added).sample
        loss = (pred - eps).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == settings.unet_steps - 1:
            log(f"unet step {step} loss {loss.item():.4f}")
    for module in modules:
        module.eval()


def scheduler_scaling(unet) -> float:
    return unet._prefloop_latent_scale  # set by make_tiny_model


def build_sd(tokenizer, vae, device):
    """Untrained SD 1.x-shaped parts: (conditioner factory, unet, pipeline factory, parameter counts)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    text_encoder = CLIPTextModel(
        CLIPTextConfig(**text_encoder_config(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id))
    ).to(device)
    unet = UNet2DConditionModel(**UNET_CONFIG).to(device)

    def pipeline():
        return StableDiffusionPipeline(
            vae=vae.cpu(), text_encoder=text_encoder.cpu(), tokenizer=tokenizer, unet=unet.cpu(),
            scheduler=DDIMScheduler(**SCHEDULER_CONFIG), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False,
        )

    return (lambda captions: SDConditioner(text_encoder, tokenizer, captions, device)), unet, pipeline, {
        "text_encoder": text_encoder}


def build_sdxl(tokenizer, vae, device):
    """Untrained SDXL-shaped parts (two text encoders, a text_time UNet); one tokenizer serves as
    both, as SDXL's two CLIP tokenizers share their vocabulary."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    first, second = sdxl_text_encoder_configs(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    text_encoder = CLIPTextModel(CLIPTextConfig(**first)).to(device)
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**second)).to(device)
    unet = UNet2DConditionModel(**SDXL_UNET_CONFIG).to(device)
    size = int(unet.config.sample_size) * 2 ** (len(vae.config.block_out_channels) - 1)

    def pipeline():
        return StableDiffusionXLPipeline(
            vae=vae.cpu(), text_encoder=text_encoder.cpu(), text_encoder_2=text_encoder_2.cpu(), tokenizer=tokenizer,
            tokenizer_2=tokenizer, unet=unet.cpu(), scheduler=EulerDiscreteScheduler(**SDXL_SCHEDULER_CONFIG),
            force_zeros_for_empty_prompt=True, add_watermarker=False,
        )

    def conditioner(captions):
        return SDXLConditioner([text_encoder, text_encoder_2], [tokenizer, tokenizer], captions, device, size)

    return conditioner, unet, pipeline, {"text_encoder": text_encoder, "text_encoder_2": text_encoder_2}


BUILDERS = {"sd": build_sd, "sdxl": build_sdxl}


def make_tiny_model(out: str | Path, settings: TrainSettings) -> Path:
    from diffusers import AutoencoderKL, DDPMScheduler

    if settings.family not in BUILDERS:
        raise ValueError(f"--family must be one of {sorted(BUILDERS)}, not {settings.family!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = torch.Generator().manual_seed(settings.seed)
    started = time.time()

    tokenizer = build_clip_tokenizer(out / "tokenizer")
    log(f"tokenizer: {len(tokenizer)} tokens")

    images_u8, captions = make_dataset(settings.images, settings.seed)
    images = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    log(f"dataset: {len(captions)} images of {len(set(captions))} training captions")

    vae_origin = "trained in this run"
    if settings.reuse_vae:
        earlier = json.loads((Path(settings.reuse_vae) / "training.json").read_text())["settings"]
        mismatched = [k for k in TrainSettings.VAE_KEYS if earlier.get(k) != getattr(settings, k)]
        if mismatched:
            raise ValueError(f"--reuse-vae {settings.reuse_vae}: different settings {mismatched}")
        vae = AutoencoderKL.from_pretrained(Path(settings.reuse_vae) / "vae").to(device).eval()
        vae_origin = f"reused from an earlier run with identical VAE settings ({', '.join(TrainSettings.VAE_KEYS)})"
        log(f"VAE {vae_origin}")
        # keep the generator in the same state as if the VAE had been trained here
        for _ in range(settings.vae_steps):
            torch.randint(0, images.shape[0], (settings.vae_batch,), generator=generator)
            torch.randn((settings.vae_batch, 4, 16, 16), generator=generator)
    else:
        vae = AutoencoderKL(**VAE_CONFIG).to(device)
        train_vae(vae, images, settings, device, generator)
    vae_check = vae_reconstruction_check(vae, device)
    log(f"VAE reconstructions of held-out renders: {vae_check}")
    means, stds = encode_all(vae, images, device)
    scale = float(1.0 / means.std())
    vae.register_to_config(scaling_factor=scale)
    log(f"latent std {means.std().item():.4f} -> scaling_factor {scale:.4f}")

    conditioner, unet, pipeline, text_encoders = BUILDERS[settings.family](tokenizer, vae, device)
    unet._prefloop_latent_scale = scale
    # the training noise schedule (the saved scheduler's betas; DDPM adds noise as every sampler assumes)
    scheduler = DDPMScheduler(**{k: SCHEDULER_CONFIG[k] for k in ("num_train_timesteps", "beta_start", "beta_end",
                                                                  "beta_schedule")})
    train_unet(unet, conditioner(captions), scheduler, means, stds, settings, device, generator)

    pipe = pipeline()
    pipe.save_pretrained(str(out))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    record = {
        "command": "python -m prefloop_worker make-tiny-model --out <dir> "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in asdict(settings).items() if k != "reuse_vae" or v),
        "settings": asdict(settings),
        "pipeline": type(pipe).__name__,
        "data": {
            "world": "prefloop_worker.shapes (grammar v1)",
            "images": settings.images,
            "distinct_captions": len(set(captions)),
            "heldout": "captions with fnv1a32(caption) % 100 < 10 are never used for training",
            "sampling": "Mulberry32(seed): scene = training_scenes()[below(n)], render seed = next_u32()",
        },
        "parameters": {"unet": count(unet), "vae": count(vae), **{k: count(m) for k, m in text_encoders.items()}},
        "vae_scaling_factor": scale,
        "vae": vae_origin,
        "vae_reconstruction_check": vae_check,
        "device": device,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "seconds": round(time.time() - started, 1),
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"saved to {out} in {record['seconds']} s")
    return out
