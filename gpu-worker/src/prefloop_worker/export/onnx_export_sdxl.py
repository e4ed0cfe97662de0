"""Export a diffusers SDXL pipeline folder (``StableDiffusionXLPipeline``) to ONNX for the Node runtime.

Output folder (format ``prefloop-onnx-sdxl/1``)::

    manifest.json                   what is where, input/output names and shapes, LoRA mapping
    text_encoder/model.onnx         input_ids int64 [batch, 77] -> penultimate_hidden_state [batch, 77, h1]
    text_encoder_2/model.onnx       input_ids int64 [batch, 77] -> penultimate_hidden_state [batch, 77, h2],
                                    text_embeds [batch, proj]
    unet/model.onnx                 sample, timestep, encoder_hidden_states [batch, 77, h1 + h2],
                                    text_embeds [batch, proj], time_ids [batch, 6],
                                    <target>.lora_A/B ... -> noise_pred
    vae_decoder/model.onnx          latents -> image in [-1, 1] (as the SD export)
    tokenizer/, tokenizer_2/        tokenizer.json (+ tokenizer_config.json) of each text encoder
    scheduler/scheduler_config.json

The text encoder outputs are what ``StableDiffusionXLPipeline.encode_prompt`` takes (clip_skip None):
``hidden_states[-2]`` of each encoder run with ``output_hidden_states=True``, and the pooled output
of the second one, ``CLIPTextModelWithProjection``'s ``text_embeds``. The pipeline concatenates the
two hidden states on the last axis (text_encoder first) into ``encoder_hidden_states``; ``text_embeds``
and ``time_ids`` reach the UNet as ``added_cond_kwargs``. Image size is fixed per export; batch and
LoRA ranks are dynamic. Everything LoRA is as in :mod:`.onnx_export`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .onnx_export import (
    TWO_GB,
    _export,
    _param_bytes,
    base_manifest,
    copy_scheduler,
    copy_tokenizer,
    export_family,
    export_unet,
    export_vae_decoder,
    log,
    model_index,
    write_manifest,
)

FORMAT = "prefloop-onnx-sdxl/1"
PIPELINE = "StableDiffusionXLPipeline"
SDXL_COMPONENTS = ("text_encoder", "text_encoder_2", "unet", "vae_decoder")
TIME_IDS_ORDER = ["original_height", "original_width", "crop_top", "crop_left", "target_height", "target_width"]


class PenultimateHiddenStateGraph(nn.Module):
    """``text_encoder(input_ids, output_hidden_states=True).hidden_states[-2]`` (CLIPTextModel)."""

    def __init__(self, text_encoder: nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        return self.text_encoder(input_ids, output_hidden_states=True, return_dict=True).hidden_states[-2]


class ProjectionEncoderGraph(nn.Module):
    """``hidden_states[-2]`` and ``text_embeds`` of a CLIPTextModelWithProjection."""

    def __init__(self, text_encoder: nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        out = self.text_encoder(input_ids, output_hidden_states=True, return_dict=True)
        return out.hidden_states[-2], out.text_embeds


def _export_text_encoder(graph: nn.Module, encoder: nn.Module, path: Path, max_length: int, outputs: dict) -> None:
    log(f"exporting {path.parent.name} -> {path}")
    ids = torch.zeros(1, max_length, dtype=torch.int64)
    axes = {"input_ids": {0: "batch"}} | {name: {0: "batch"} for name in outputs}
    with torch.no_grad():
        _export(graph, (ids,), path, ["input_ids"], list(outputs), axes, _param_bytes(encoder) > TWO_GB)


def export_sdxl_pipeline(
    model_dir: str | Path,
    out_dir: str | Path,
    height: int = 1024,
    width: int = 1024,
    components: tuple[str, ...] = SDXL_COMPONENTS,
    dtype: torch.dtype = torch.float32,
) -> dict:
    """Export the SDXL pipeline folder `model_dir` into `out_dir`; returns the manifest."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    index = model_index(model_dir)
    if export_family(index) != "sdxl":
        raise ValueError(f"{model_dir}: pipeline {index.get('_class_name')!r} is not an SDXL pipeline (no text_encoder_2)")
    unknown = set(components) - set(SDXL_COMPONENTS)
    if unknown:
        raise ValueError(f"unknown SDXL components {sorted(unknown)} (known: {', '.join(SDXL_COMPONENTS)})")
    out_dir.mkdir(parents=True, exist_ok=True)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet", torch_dtype=dtype).eval()
    if unet.config.addition_embed_type != "text_time":
        raise ValueError(f"{model_dir}/unet: addition_embed_type is {unet.config.addition_embed_type!r}, SDXL UNets have 'text_time'")
    vae = AutoencoderKL.from_pretrained(model_dir / "vae", torch_dtype=dtype).eval()
    encoder_2 = CLIPTextModelWithProjection.from_pretrained(model_dir / "text_encoder_2", torch_dtype=dtype).eval()
    manifest, lat_h, lat_w = base_manifest(FORMAT, model_dir, index, unet, vae, height, width, dtype)
    # "pipeline" right after "format"
    manifest = {"format": manifest.pop("format"), "pipeline": PIPELINE, **manifest}
    components_part = manifest.pop("components")

    projection_dim = int(encoder_2.config.projection_dim)
    manifest["force_zeros_for_empty_prompt"] = bool(index.get("force_zeros_for_empty_prompt", True))
    manifest["add_time_ids"] = {
        "order": TIME_IDS_ORDER,
        "addition_time_embed_dim": int(unet.config.addition_time_embed_dim),
        "text_encoder_projection_dim": projection_dim,
    }
    expected_add = int(unet.add_embedding.linear_1.in_features)
    if unet.config.addition_time_embed_dim * len(TIME_IDS_ORDER) + projection_dim != expected_add:
        raise ValueError(
            f"{model_dir}: the UNet's added embedding takes {expected_add} inputs, but 6 time ids x "
            f"{unet.config.addition_time_embed_dim} + projection {projection_dim} make "
            f"{unet.config.addition_time_embed_dim * 6 + projection_dim}"
        )
    manifest["tokenizer"] = copy_tokenizer(model_dir, out_dir, "tokenizer")
    manifest["tokenizer_2"] = copy_tokenizer(model_dir, out_dir, "tokenizer_2")
    max_length = manifest["tokenizer"]["max_length"]
    if manifest["tokenizer_2"]["max_length"] != max_length:
        raise ValueError(
            f"{model_dir}: tokenizer max_length {max_length} and tokenizer_2 max_length "
            f"{manifest['tokenizer_2']['max_length']} differ; the pipeline concatenates their hidden states"
        )
    manifest["scheduler"], sched_cfg = copy_scheduler(model_dir, out_dir)
    manifest["components"] = components_part

    encoder_1 = CLIPTextModel.from_pretrained(model_dir / "text_encoder", torch_dtype=dtype).eval()
    h1, h2 = int(encoder_1.config.hidden_size), int(encoder_2.config.hidden_size)
    if h1 + h2 != unet.config.cross_attention_dim:
        raise ValueError(
            f"{model_dir}: text encoder widths {h1} + {h2} do not make the UNet's cross_attention_dim "
            f"{unet.config.cross_attention_dim}"
        )
    ids_input = {"input_ids": {"dtype": "int64", "shape": ["batch", max_length]}}
    if "text_encoder" in components:
        outputs = {"penultimate_hidden_state": {"dtype": "float32", "shape": ["batch", max_length, h1]}}
        path = out_dir / "text_encoder" / "model.onnx"
        _export_text_encoder(PenultimateHiddenStateGraph(encoder_1), encoder_1, path, max_length, outputs)
        components_part["text_encoder"] = {
            "file": "text_encoder/model.onnx",
            "inputs": ids_input,
            "outputs": outputs,
            "note": "penultimate_hidden_state = hidden_states[-2] (output_hidden_states=True)",
        }
    del encoder_1
    if "text_encoder_2" in components:
        outputs = {
            "penultimate_hidden_state": {"dtype": "float32", "shape": ["batch", max_length, h2]},
            "text_embeds": {"dtype": "float32", "shape": ["batch", projection_dim]},
        }
        path = out_dir / "text_encoder_2" / "model.onnx"
        _export_text_encoder(ProjectionEncoderGraph(encoder_2), encoder_2, path, max_length, outputs)
        components_part["text_encoder_2"] = {
            "file": "text_encoder_2/model.onnx",
            "inputs": ids_input,
            "outputs": outputs,
            "note": "penultimate_hidden_state = hidden_states[-2]; text_embeds = CLIPTextModelWithProjection's pooled, "
            "projected output (the pipeline's pooled_prompt_embeds)",
        }
    del encoder_2

    if "unet" in components:
        unet_part, lora_part = export_unet(
            unet, out_dir / "unet" / "model.onnx", lat_h, lat_w, max_length, dtype, text_embeds_dim=projection_dim
        )
        unet_part["prediction_type"] = sched_cfg.get("prediction_type", "epsilon")
        components_part["unet"] = unet_part
        manifest["lora"] = lora_part

    if "vae_decoder" in components:
        components_part["vae_decoder"] = export_vae_decoder(vae, out_dir, lat_h, lat_w, height, width, dtype)

    write_manifest(out_dir, manifest)
    return manifest
