"""UNet wrapper whose LoRA A/B matrices are ordinary forward inputs (so they become ONNX graph inputs).

Every attention projection ``to_q``, ``to_k``, ``to_v``, ``to_out.0`` gets a branch

    y = base(x) + (x @ A^T) @ B^T        A: (rank, in_features), B: (out_features, rank)

A and B have the layout of peft's ``lora_A.weight`` / ``lora_B.weight``. The branch has no scale
of its own: the caller multiplies B by ``alpha / rank * strength`` before feeding it (peft computes
``B(A(x)) * alpha / rank``, so feeding ``B * alpha/rank`` gives the same output). Rank-0 tensors
make the branch add exactly zero, i.e. the base model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


@dataclass(frozen=True)
class LoraTarget:
    module: str  # path inside the UNet, e.g. "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    in_features: int
    out_features: int

    @property
    def input_a(self) -> str:
        return f"{self.module}.lora_A"

    @property
    def input_b(self) -> str:
        return f"{self.module}.lora_B"

    @property
    def key_a(self) -> str:
        """Key in diffusers' pytorch_lora_weights.safetensors (peft layout, "unet." prefix)."""
        return f"unet.{self.module}.lora_A.weight"

    @property
    def key_b(self) -> str:
        return f"unet.{self.module}.lora_B.weight"


def lora_targets(unet: nn.Module) -> list[LoraTarget]:
    """Every attention projection of the UNet, in module order."""
    from diffusers.models.attention_processor import Attention

    found = []
    for name, module in unet.named_modules():
        if isinstance(module, Attention):
            for target in TARGETS:
                linear = module.get_submodule(target)
                if isinstance(linear, nn.Linear):
                    found.append(LoraTarget(f"{name}.{target}", linear.in_features, linear.out_features))
    return found


class LinearWithLoraInput(nn.Module):
    def __init__(self, base: nn.Linear, slot: dict, index: int) -> None:
        super().__init__()
        self.base = base
        self.slot = slot
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.slot["tensors"][self.index]
        return self.base(x) + torch.matmul(torch.matmul(x, a.t()), b.t())


class UNetWithLoraInputs(nn.Module):
    """forward(sample, timestep, encoder_hidden_states, A_0, B_0, A_1, B_1, ...) -> noise prediction (SD 1.x/2.x UNet)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet
        self.targets = lora_targets(unet)
        self.slot: dict = {"tensors": []}
        for index, target in enumerate(self.targets):
            parent_name, _, child = target.module.rpartition(".")
            parent = unet.get_submodule(parent_name)
            base = parent.get_submodule(child)
            if isinstance(base, LinearWithLoraInput):
                raise ValueError("UNet already wrapped")
            if parent_name.endswith("to_out"):
                parent[int(child)] = LinearWithLoraInput(base, self.slot, index)
            else:
                setattr(parent, child, LinearWithLoraInput(base, self.slot, index))

    def forward(self, sample, timestep, encoder_hidden_states, *lora):
        return self.run_unet(sample, timestep, encoder_hidden_states, lora)

    def run_unet(self, sample, timestep, encoder_hidden_states, lora, added_cond_kwargs=None):
        self.slot["tensors"] = [(lora[2 * i], lora[2 * i + 1]) for i in range(len(self.targets))]
        try:
            extra = {} if added_cond_kwargs is None else {"added_cond_kwargs": added_cond_kwargs}
            return self.unet(sample, timestep, encoder_hidden_states, return_dict=False, **extra)[0]
        finally:
            self.slot["tensors"] = []

    def zero_rank_inputs(self, dtype=torch.float32) -> list[torch.Tensor]:
        return self.rank_inputs(0, dtype)

    def rank_inputs(self, rank: int, dtype=torch.float32, generator: torch.Generator | None = None, std: float = 0.0):
        tensors = []
        for t in self.targets:
            a = torch.zeros(rank, t.in_features, dtype=dtype)
            b = torch.zeros(t.out_features, rank, dtype=dtype)
            if std > 0:
                a = torch.randn(a.shape, generator=generator, dtype=dtype) * std
                b = torch.randn(b.shape, generator=generator, dtype=dtype) * std
            tensors += [a, b]
        return tensors

    def inputs_from_state_dict(self, state: dict[str, torch.Tensor], scale: float = 1.0) -> list[torch.Tensor]:
        """Feeds from a diffusers LoRA state dict (B multiplied by `scale` = alpha/rank*strength);
        targets missing from the dict get rank-0 tensors (each target has its own rank dim)."""
        tensors = []
        for t in self.targets:
            if t.key_a in state:
                tensors += [state[t.key_a].float(), state[t.key_b].float() * scale]
            else:
                tensors += [torch.zeros(0, t.in_features), torch.zeros(t.out_features, 0)]
        return tensors


class SDXLUNetWithLoraInputs(UNetWithLoraInputs):
    """forward(sample, timestep, encoder_hidden_states, text_embeds, time_ids, A_0, B_0, ...) -> noise prediction.

    An SDXL UNet (``addition_embed_type="text_time"``): ``text_embeds`` (the second text encoder's
    pooled, projected output) and ``time_ids`` (``[batch, 6]`` micro-conditioning) go to the UNet as
    ``added_cond_kwargs``, as ``StableDiffusionXLPipeline`` passes them."""

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids, *lora):
        added = {"text_embeds": text_embeds, "time_ids": time_ids}
        return self.run_unet(sample, timestep, encoder_hidden_states, lora, added)
