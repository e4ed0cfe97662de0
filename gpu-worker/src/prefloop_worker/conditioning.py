"""What an SDXL UNet is conditioned on besides the noisy latents and the timestep.

As diffusers' ``StableDiffusionXLPipeline.encode_prompt`` and its SDXL training scripts
(``examples/research_projects/diffusion_dpo/train_diffusion_dpo_sdxl.py``) build it:

* ``encoder_hidden_states``: the **penultimate** hidden states of both text encoders,
  concatenated on the feature axis (``text_encoder`` first);
* ``text_embeds``: the pooled, projected output of the second encoder
  (``CLIPTextModelWithProjection``'s ``text_embeds``);
* ``time_ids``: the micro-conditioning ``original_size + crop_top_left + target_size``, each an
  ``(height, width)`` / ``(top, left)`` pair: six numbers per image.

The last two go to the UNet as ``added_cond_kwargs`` (``addition_embed_type="text_time"``).
An SD 1.x/2.x UNet takes the one encoder's last hidden state and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Size = tuple[int, int]


def add_time_ids(original_size: Size, crop_top_left: Size, target_size: Size) -> list[int]:
    """``list(original_size + crops_coords_top_left + target_size)``, the pipeline's order."""
    return [int(v) for v in (*original_size, *crop_top_left, *target_size)]


def time_ids(original_sizes: Sequence[Size], crop_top_lefts: Sequence[Size], target_size: Size) -> torch.Tensor:
    """``[N, 6]`` float time ids, one row per image (the training scripts' ``compute_time_ids``)."""
    rows = [add_time_ids(o, c, target_size) for o, c in zip(original_sizes, crop_top_lefts, strict=True)]
    return torch.tensor(rows, dtype=torch.float32)


def encode_sdxl_prompts(text_encoders: Sequence[torch.nn.Module], input_ids: Sequence[torch.Tensor]):
    """``(prompt_embeds [N, L, D1 + D2], pooled_prompt_embeds [N, P])`` from token ids of both tokenizers."""
    hidden, pooled = [], None
    for encoder, ids in zip(text_encoders, input_ids, strict=True):
        out = encoder(ids, output_hidden_states=True)
        pooled = out[0]  # only the last encoder's pooled output is kept
        hidden.append(out.hidden_states[-2])
    return torch.cat(hidden, dim=-1), pooled


def tokenize(tokenizer, captions: Sequence[str]) -> torch.Tensor:
    """Token ids padded/truncated to the tokenizer's 77 positions, as the pipelines tokenize."""
    return tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids
