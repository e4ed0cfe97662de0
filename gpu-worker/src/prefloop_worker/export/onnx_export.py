"""Export a diffusers Stable Diffusion (1.x/2.x family) pipeline folder to ONNX for the Node runtime.

SDXL folders are recognised from model_index.json and exported by :mod:`.onnx_export_sdxl`
(format ``prefloop-onnx-sdxl/1``); this module's helpers are shared with it.

Output folder::

    manifest.json                   what is where, input/output names and shapes, LoRA mapping
    text_encoder/model.onnx         input_ids int64 [batch, 77] -> last_hidden_state, pooler_output
    unet/model.onnx                 sample, timestep, encoder_hidden_states, <target>.lora_A/B ... -> noise_pred
    vae_decoder/model.onnx          latents [batch, 4, h/8.., w/8..] -> image [batch, 3, H, W] in [-1, 1]
    tokenizer/tokenizer.json        (+ tokenizer_config.json)
    scheduler/scheduler_config.json

A model file whose weights exceed 2 GB keeps them in `model.onnx.data` next to it (ONNX external
data, one file). Image size is fixed per export (onnxruntime-node ignores free-dimension
overrides); batch and LoRA ranks are dynamic.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from .lora_inputs import SDXLUNetWithLoraInputs, UNetWithLoraInputs

FORMAT = "prefloop-onnx-sd/1"
OPSET = 17
TWO_GB = 2**31
SCALE_CONVENTION = (
    "Each LoRA target y = base(x) + (x @ A^T) @ B^T. Feed A = lora_A.weight (rank, in_features) as is "
    "and B = lora_B.weight (out_features, rank) multiplied by (alpha / rank) * strength; the graph has "
    "no scale of its own. Rank-0 tensors ([0, in] and [out, 0]) give the base model exactly. Every target "
    "has its own rank dim; several adapters can be stacked by concatenating their A rows and B columns."
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class TextEncoderGraph(nn.Module):
    def __init__(self, text_encoder: nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        out = self.text_encoder(input_ids, return_dict=True)
        return out.last_hidden_state, out.pooler_output


class VaeDecoderGraph(nn.Module):
    """Pipeline latents in, decoded image out: `vae.decode(latents / scaling_factor)`."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae
        self.scaling_factor = float(vae.config.scaling_factor)
        self.shift_factor = float(getattr(vae.config, "shift_factor", None) or 0.0)

    def forward(self, latents):
        z = latents / self.scaling_factor + self.shift_factor
        return self.vae.decode(z, return_dict=False)[0]


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _param_bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _export(module, args, path: Path, input_names, output_names, dynamic_axes, large: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not large:
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
        return
    import onnx

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "model.onnx"
        torch.onnx.export(
            module,
            args,
            str(raw),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
        model = onnx.load(str(raw), load_external_data=True)
        data = path.name + ".data"
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data)


def _io(session_like) -> dict:
    return {i.name: {"dtype": i.type, "shape": list(i.shape)} for i in session_like}


def model_index(model_dir: Path) -> dict:
    path = model_dir / "model_index.json"
    if not path.exists():
        raise ValueError(f"{model_dir} is not a diffusers pipeline folder (no model_index.json)")
    return json.loads(path.read_text())


def export_family(index: dict) -> str:
    """The export family of a model_index.json: ``sdxl`` when its `_class_name` is an SDXL pipeline
    (:data:`..family.PIPELINES`) or it has a second text encoder, else ``sd``."""
    from ..family import PIPELINES

    return "sdxl" if PIPELINES.get(index.get("_class_name")) == "sdxl" or "text_encoder_2" in index else "sd"


def base_manifest(fmt: str, model_dir: Path, index: dict, unet, vae, height: int, width: int, dtype: torch.dtype):
    """The manifest's head (format, source, image, latents, dtype, opset, empty components) and the
    latent height and width; ValueError when the image size does not divide by the VAE's factor."""
    vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
    if height % vae_scale or width % vae_scale:
        raise ValueError(f"height and width must be multiples of {vae_scale}")
    lat_h, lat_w = height // vae_scale, width // vae_scale
    manifest: dict = {
        "format": fmt,
        "source": {
            "model_dir": str(model_dir),
            "model_index": index,
            # identifies the base model: sha256 of its checksums.sha256 when it has one
            "checksums_sha256": _sha256(model_dir / "checksums.sha256") if (model_dir / "checksums.sha256").exists() else None,
        },
        "image": {"height": height, "width": width, "channels": 3, "range": [-1, 1]},
        "latents": {
            "channels": unet.config.in_channels,
            "height": lat_h,
            "width": lat_w,
            "vae_scale_factor": vae_scale,
            "vae_scaling_factor": float(vae.config.scaling_factor),
        },
        "dtype": str(dtype).replace("torch.", ""),
        "opset": OPSET,
        "components": {},
    }
    return manifest, lat_h, lat_w


def copy_tokenizer(model_dir: Path, out_dir: Path, name: str = "tokenizer") -> dict:
    """Copy `model_dir/<name>` as tokenizer.json (+ config) into `out_dir/<name>`; its manifest entry."""
    tok_out = out_dir / name
    tok_out.mkdir(exist_ok=True)
    tok_src = model_dir / name
    if (tok_src / "tokenizer.json").exists():
        for file in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (tok_src / file).exists():
                shutil.copy(tok_src / file, tok_out / file)
    else:  # vocab.json + merges.txt only (older checkpoints): let transformers build tokenizer.json
        from transformers import CLIPTokenizer

        CLIPTokenizer.from_pretrained(tok_src).save_pretrained(tok_out)
    tok_config = json.loads((tok_out / "tokenizer_config.json").read_text())
    max_length = int(tok_config.get("model_max_length", 77))
    if max_length > 1000:
        max_length = 77
    tokenizer_json = json.loads((tok_out / "tokenizer.json").read_text())
    specials = {t["content"]: t["id"] for t in tokenizer_json.get("added_tokens", [])}
    vocab = tokenizer_json["model"]["vocab"]

    def token_id(key: str):
        content = tok_config.get(key)
        if isinstance(content, dict):
            content = content.get("content")
        return specials.get(content, vocab.get(content)) if content is not None else None

    return {
        "file": f"{name}/tokenizer.json",
        "max_length": max_length,
        "bos_token_id": token_id("bos_token"),
        "eos_token_id": token_id("eos_token"),
        "pad_token_id": token_id("pad_token"),
        "truncation": "keep the first max_length-2 tokens, add BOS and EOS, pad with pad_token_id",
    }


def copy_scheduler(model_dir: Path, out_dir: Path) -> tuple[dict, dict]:
    """Copy scheduler_config.json; (its manifest entry, the config)."""
    sched_out = out_dir / "scheduler"
    sched_out.mkdir(exist_ok=True)
    shutil.copy(model_dir / "scheduler" / "scheduler_config.json", sched_out / "scheduler_config.json")
    config = json.loads((sched_out / "scheduler_config.json").read_text())
    return {"file": "scheduler/scheduler_config.json", "class": config.get("_class_name")}, config


def export_vae_decoder(vae, out_dir: Path, lat_h: int, lat_w: int, height: int, width: int, dtype: torch.dtype) -> dict:
    path = out_dir / "vae_decoder" / "model.onnx"
    log(f"exporting VAE decoder -> {path}")
    latents = torch.zeros(1, vae.config.latent_channels, lat_h, lat_w, dtype=dtype)
    with torch.no_grad():
        _export(
            VaeDecoderGraph(vae),
            (latents,),
            path,
            ["latents"],
            ["image"],
            {"latents": {0: "batch"}, "image": {0: "batch"}},
            _param_bytes(vae) > TWO_GB,
        )
    return {
        "file": "vae_decoder/model.onnx",
        "inputs": {"latents": {"dtype": "float32", "shape": ["batch", vae.config.latent_channels, lat_h, lat_w]}},
        "outputs": {"image": {"dtype": "float32", "shape": ["batch", 3, height, width]}},
        "note": "input = pipeline latents; the graph divides by vae_scaling_factor. image in [-1, 1]; "
        "to pixels: clamp((image / 2 + 0.5), 0, 1) * 255, round",
    }


def export_pipeline(
    model_dir: str | Path,
    out_dir: str | Path,
    height: int = 512,
    width: int = 512,
    components: tuple[str, ...] = ("text_encoder", "unet", "vae_decoder"),
    dtype: torch.dtype = torch.float32,
) -> dict:
    """Export the pipeline folder `model_dir` into `out_dir`; returns the manifest.

    SDXL folders (see :func:`export_family`) go to :mod:`.onnx_export_sdxl` (component names there:
    text_encoder, text_encoder_2, unet, vae_decoder)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    index = model_index(model_dir)
    if export_family(index) == "sdxl":
        from .onnx_export_sdxl import SDXL_COMPONENTS, export_sdxl_pipeline

        if components == ("text_encoder", "unet", "vae_decoder"):
            components = SDXL_COMPONENTS
        return export_sdxl_pipeline(model_dir, out_dir, height, width, components, dtype)
    out_dir.mkdir(parents=True, exist_ok=True)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet", torch_dtype=dtype).eval()
    vae = AutoencoderKL.from_pretrained(model_dir / "vae", torch_dtype=dtype).eval()
    manifest, lat_h, lat_w = base_manifest(FORMAT, model_dir, index, unet, vae, height, width, dtype)

    # Tokenizer and scheduler configuration.
    manifest["tokenizer"] = copy_tokenizer(model_dir, out_dir)
    max_length = manifest["tokenizer"]["max_length"]
    manifest["scheduler"], sched_cfg = copy_scheduler(model_dir, out_dir)

    if "text_encoder" in components:
        text_encoder = CLIPTextModel.from_pretrained(model_dir / "text_encoder", torch_dtype=dtype).eval()
        path = out_dir / "text_encoder" / "model.onnx"
        log(f"exporting text encoder -> {path}")
        ids = torch.zeros(1, max_length, dtype=torch.int64)
        _export(
            TextEncoderGraph(text_encoder),
            (ids,),
            path,
            ["input_ids"],
            ["last_hidden_state", "pooler_output"],
            {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}, "pooler_output": {0: "batch"}},
            _param_bytes(text_encoder) > TWO_GB,
        )
        hidden = text_encoder.config.hidden_size
        manifest["components"]["text_encoder"] = {
            "file": "text_encoder/model.onnx",
            "inputs": {"input_ids": {"dtype": "int64", "shape": ["batch", max_length]}},
            "outputs": {
                "last_hidden_state": {"dtype": "float32", "shape": ["batch", max_length, hidden]},
                "pooler_output": {"dtype": "float32", "shape": ["batch", hidden]},
            },
        }
        del text_encoder

    if "unet" in components:
        unet_part, lora_part = export_unet(unet, out_dir / "unet" / "model.onnx", lat_h, lat_w, max_length, dtype)
        manifest["components"]["unet"] = unet_part
        manifest["lora"] = lora_part

    if "vae_decoder" in components:
        manifest["components"]["vae_decoder"] = export_vae_decoder(vae, out_dir, lat_h, lat_w, height, width, dtype)

    if "unet" in manifest["components"]:
        manifest["components"]["unet"]["prediction_type"] = sched_cfg.get("prediction_type", "epsilon")
    write_manifest(out_dir, manifest)
    return manifest


def write_manifest(out_dir: Path, manifest: dict) -> None:
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"manifest -> {out_dir / 'manifest.json'}")


def export_unet(
    unet,
    path: Path,
    lat_h: int,
    lat_w: int,
    seq: int = 77,
    dtype: torch.dtype = torch.float32,
    text_embeds_dim: int | None = None,
):
    """Export `unet` (modified in place: its attention projections get LoRA inputs) to `path`.

    With `text_embeds_dim` (an SDXL UNet) the graph also takes ``text_embeds`` [batch, text_embeds_dim]
    and ``time_ids`` [batch, 6] after ``encoder_hidden_states`` (the UNet's ``added_cond_kwargs``).
    Returns the manifest entries (component description, LoRA mapping), file paths relative to
    the export folder (path's grandparent)."""
    sdxl = text_embeds_dim is not None
    wrapped = (SDXLUNetWithLoraInputs(unet) if sdxl else UNetWithLoraInputs(unet)).eval()
    rel = path.relative_to(path.parent.parent).as_posix()
    log(f"exporting UNet with {len(wrapped.targets)} LoRA targets -> {path}")
    cross = unet.config.cross_attention_dim
    sample = torch.zeros(1, unet.config.in_channels, lat_h, lat_w, dtype=dtype)
    timestep = torch.tensor([999.0], dtype=dtype)
    hidden = torch.zeros(1, seq, cross, dtype=dtype)
    lora = wrapped.rank_inputs(2, dtype=dtype)
    names = ["sample", "timestep", "encoder_hidden_states"]
    axes: dict = {
        "sample": {0: "batch"},
        "timestep": {0: "batch"},
        "encoder_hidden_states": {0: "batch"},
        "noise_pred": {0: "batch"},
    }
    added: tuple = ()
    if sdxl:
        added = (torch.zeros(1, text_embeds_dim, dtype=dtype), torch.tensor([[512.0, 512.0, 0.0, 0.0, 512.0, 512.0]], dtype=dtype))
        names += ["text_embeds", "time_ids"]
        axes |= {"text_embeds": {0: "batch"}, "time_ids": {0: "batch"}}
    targets = []
    for i, t in enumerate(wrapped.targets):
        names += [t.input_a, t.input_b]
        axes[t.input_a] = {0: f"rank_{i}"}
        axes[t.input_b] = {1: f"rank_{i}"}
        targets.append(
            {
                "module": t.module,
                "input_a": t.input_a,
                "input_b": t.input_b,
                "key_a": t.key_a,
                "key_b": t.key_b,
                "shape_a": [f"rank_{i}", t.in_features],
                "shape_b": [t.out_features, f"rank_{i}"],
            }
        )
    with torch.no_grad():
        _export(wrapped, (sample, timestep, hidden, *added, *lora), path, names, ["noise_pred"], axes, _param_bytes(unet) > TWO_GB)
    external = path.parent / (path.name + ".data")
    elem = "float16" if dtype == torch.float16 else "float32"
    unet_part = {
        "file": rel,
        "external_data": f"{rel}.data" if external.exists() else None,
        "inputs": {
            "sample": {"dtype": elem, "shape": ["batch", unet.config.in_channels, lat_h, lat_w]},
            "timestep": {"dtype": elem, "shape": ["batch"]},
            "encoder_hidden_states": {"dtype": elem, "shape": ["batch", seq, cross]},
            **(
                {
                    "text_embeds": {"dtype": elem, "shape": ["batch", text_embeds_dim]},
                    "time_ids": {"dtype": elem, "shape": ["batch", 6]},
                }
                if sdxl
                else {}
            ),
        },
        "outputs": {"noise_pred": {"dtype": elem, "shape": ["batch", unet.config.out_channels, lat_h, lat_w]}},
        "lora_input_dtype": elem,
    }
    lora_part = {
        "targets_per_attention": ["to_q", "to_k", "to_v", "to_out.0"],
        "scale_convention": SCALE_CONVENTION,
        "scale_folded_into": "B",
        "key_format": "diffusers pytorch_lora_weights.safetensors (peft): unet.<module>.lora_A.weight / lora_B.weight; "
        "alpha and r in the safetensors metadata 'lora_adapter_metadata' (JSON, keys 'unet.lora_alpha', 'unet.r')",
        "targets": targets,
    }
    return unet_part, lora_part
