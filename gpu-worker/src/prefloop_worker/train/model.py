"""Base-model loading (SD 1.x/2.x and SDXL), LoRA injection and the diffusers-format adapter save."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..conditioning import encode_sdxl_prompts, tokenize
from ..family import ModelFamily, model_family

LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
ADAPTER_WEIGHTS = "pytorch_lora_weights.safetensors"


@dataclass
class BaseModel:
    """The frozen parts of an SD- or SDXL-architecture model a preference trainer needs."""

    path: Path
    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: object  # DDPMScheduler built from the model's scheduler config
    family: ModelFamily = ModelFamily("sd", "StableDiffusionPipeline")
    tokenizer_2: object = None  # SDXL only
    text_encoder_2: torch.nn.Module | None = None  # SDXL only: CLIPTextModelWithProjection
    zeros_for_empty_prompt: bool = False  # SDXL's force_zeros_for_empty_prompt: the unconditional input is zeros

    @property
    def text_encoders(self) -> list[torch.nn.Module]:
        return [m for m in (self.text_encoder, self.text_encoder_2) if m is not None]

    @torch.no_grad()
    def encode_prompts(self, captions: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(encoder_hidden_states, pooled)`` per caption, as the family's pipeline encodes a prompt.

        SD: the last hidden state and the pooled output; SDXL: both encoders' penultimate hidden
        states concatenated and the second encoder's projected pooled output (``text_embeds``)."""
        if not self.family.is_sdxl:
            out = self.text_encoder(tokenize(self.tokenizer, captions).to(device))
            return out[0], out[1]
        ids = [tokenize(t, captions).to(device) for t in (self.tokenizer, self.tokenizer_2)]
        return encode_sdxl_prompts(self.text_encoders, ids)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def resolution(self) -> int:
        return int(self.unet.config.sample_size) * self.vae_scale_factor


def load_base_model(path: str | os.PathLike) -> BaseModel:
    """Load tokenizer(s), text encoder(s), VAE, UNet and a DDPM training scheduler from a diffusers
    folder; the family (SD or SDXL) is the folder's model_index.json ``_class_name``."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    path = Path(path)
    family = model_family(path)
    tokenizer = CLIPTokenizer.from_pretrained(path / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(path / "text_encoder")
    vae = AutoencoderKL.from_pretrained(path / "vae")
    unet = UNet2DConditionModel.from_pretrained(path / "unet")
    sched_cfg = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
    noise_scheduler = DDPMScheduler.from_config(sched_cfg)
    extra = {}
    if family.is_sdxl:
        index = json.loads((path / "model_index.json").read_text())
        extra = dict(
            tokenizer_2=CLIPTokenizer.from_pretrained(path / "tokenizer_2"),
            text_encoder_2=CLIPTextModelWithProjection.from_pretrained(path / "text_encoder_2"),
            zeros_for_empty_prompt=bool(index.get("force_zeros_for_empty_prompt", True)),
        )
    for module in (text_encoder, extra.get("text_encoder_2"), vae, unet):
        if module is not None:
            module.requires_grad_(False)
            module.eval()
    return BaseModel(path, tokenizer, text_encoder, vae, unet, noise_scheduler, family, **extra)


def model_sha256(path: str | os.PathLike) -> str:
    """Content hash of a model folder: sha256 over sorted ``relpath\\0sha256(file)\\n`` lines."""
    root = Path(path)
    outer = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        inner = hashlib.sha256()
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                inner.update(chunk)
        outer.update(f"{rel}\0{inner.hexdigest()}\n".encode())
    return outer.hexdigest()


def add_lora(unet, rank: int, alpha: float, targets=LORA_TARGETS, init_seed: int | None = None):
    """Inject a peft LoRA into the UNet's attention projections; trainables become fp32."""
    from peft import LoraConfig

    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets))
    if init_seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            unet.add_adapter(config)
    else:
        unet.add_adapter(config)
    for param in unet.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    return config


def lora_parameters(unet) -> list[torch.nn.Parameter]:
    return [p for p in unet.parameters() if p.requires_grad]


@contextlib.contextmanager
def adapter_disabled(unet):
    """The reference model: the same UNet with its LoRA switched off (no second copy)."""
    unet.disable_adapters()
    try:
        yield unet
    finally:
        unet.enable_adapters()


def lora_state_dict(unet) -> dict[str, torch.Tensor]:
    """The adapter weights in peft's key format (what a checkpoint stores)."""
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(unet).items()}


def load_lora_state(unet, state: dict[str, torch.Tensor]) -> None:
    from peft.utils import set_peft_model_state_dict

    result = set_peft_model_state_dict(unet, state)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ValueError(f"unexpected LoRA keys in checkpoint: {unexpected[:5]}")


def save_diffusers_lora(unet, directory: str | os.PathLike, config, family: ModelFamily | None = None) -> Path:
    """Write ``pytorch_lora_weights.safetensors`` so ``pipe.load_lora_weights(directory)`` loads it
    (``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline``: the family's own saver).

    Uses diffusers' own save path with peft-layout keys (``unet.<module>.lora_A.weight`` /
    ``.lora_B.weight``, what the ONNX exporter's manifest names); the LoRA config (rank, alpha,
    targets) goes into the safetensors metadata so the loader applies the right ``alpha / rank``.
    """
    from peft.utils import get_peft_model_state_dict

    pipeline = (family or ModelFamily("sd", "StableDiffusionPipeline")).pipeline_class()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(unet).items()}
    layers = state
    metadata = config.to_dict()
    metadata = {k: (sorted(v) if isinstance(v, set) else v) for k, v in metadata.items()}
    pipeline.save_lora_weights(
        save_directory=str(directory),
        unet_lora_layers=layers,
        weight_name=ADAPTER_WEIGHTS,
        unet_lora_adapter_metadata=metadata,
    )
    return directory / ADAPTER_WEIGHTS


def lora_parameter_map(unet, adapter: str = "default") -> dict[str, torch.nn.Parameter]:
    """LoRA parameters by their key in peft's saved format (the adapter name left out)."""
    out = {}
    for name, param in unet.named_parameters():
        if ".lora_A." in name or ".lora_B." in name:
            out[name.replace(f".{adapter}.", ".")] = param
    return out


def read_adapter(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """An adapter folder's LoRA tensors (peft keys, ``unet.`` prefix removed) and its LoRA config."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(directory) / ADAPTER_WEIGHTS
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata() or {}
    config = {}
    if "lora_adapter_metadata" in metadata:
        raw = json.loads(metadata["lora_adapter_metadata"])
        config = {k.removeprefix("unet."): v for k, v in raw.items()}
    tensors = {k.removeprefix("unet."): v for k, v in load_file(str(path)).items()}
    return tensors, config


def check_compatible(unet, tensors: dict[str, torch.Tensor], config: dict, *, rank: int, alpha: float, name: str) -> None:
    """Raise ValueError naming the adapter when its LoRA does not fit this UNet's LoRA exactly."""
    params = lora_parameter_map(unet)
    problems = []
    if config.get("r") is not None and int(config["r"]) != rank:
        problems.append(f"rank {config['r']} ≠ {rank}")
    if config.get("lora_alpha") is not None and float(config["lora_alpha"]) != float(alpha):
        problems.append(f"alpha {config['lora_alpha']} ≠ {alpha:g}")
    missing, extra = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
    if missing:
        problems.append(f"{len(missing)} LoRA keys missing (e.g. {missing[0]})")
    if extra:
        problems.append(f"{len(extra)} unexpected LoRA keys (e.g. {extra[0]})")
    shapes = [k for k in set(params) & set(tensors) if tuple(params[k].shape) != tuple(tensors[k].shape)]
    if shapes:
        k = sorted(shapes)[0]
        problems.append(f"{len(shapes)} shapes differ (e.g. {k}: {tuple(tensors[k].shape)} ≠ {tuple(params[k].shape)})")
    if problems:
        raise ValueError(f"parent adapter {name} is incompatible with this training job: {'; '.join(problems)}")


@contextlib.contextmanager
def lora_weights_swapped(params: dict[str, torch.nn.Parameter], weights: dict[str, torch.Tensor]):
    """Run with other LoRA weights in place (no grad, no graph): the frozen parent as the reference.

    The policy's own values are copied back on exit, before any backward pass reads them.
    """
    with torch.no_grad():
        saved = {k: p.data.clone() for k, p in params.items()}
        for k, p in params.items():
            p.data.copy_(weights[k])
    try:
        yield
    finally:
        with torch.no_grad():
            for k, p in params.items():
                p.data.copy_(saved[k])


def make_optimizer(name: str, params, lr: float, weight_decay: float, device) -> tuple[torch.optim.Optimizer, str]:
    """AdamW, or bitsandbytes' 8-bit AdamW where it can run (CUDA and the package installed)."""
    wants_8bit = name in ("auto", "adamw8bit")
    if wants_8bit and getattr(device, "type", str(device)) == "cuda":
        try:
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(params, lr=lr, weight_decay=weight_decay), "adamw8bit"
        except ImportError:
            pass
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay), "adamw"
