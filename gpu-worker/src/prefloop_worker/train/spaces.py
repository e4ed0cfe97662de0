"""Where the distance between a prediction and its target is measured.

* ``latent``: the ordinary ε-MSE (or v-MSE for v-prediction models), averaged over C, H, W.
* ``ncp`` (Gambashidze et al. 2024, "noise-conditioned perception"; defaults = its code): one
  reverse step from ``x_t`` to ``t-1`` with the policy's prediction, with the reference's and with
  the true noise (the target). By default (``ncp_step = "ddpm"``) this is the stochastic DDPM step
  (``fixed_small`` variance) whose variance noise is shared by policy, reference and target, and
  the same for both images of a pair; then the three results go through a frozen copy of the base
  UNet's encoder at ``t-1`` with the same text conditioning, and the distance is
  ``(f(x̂) - f(x)).pow(2).mean(C,H,W)`` of one feature map: the **last down block's output**
  (``ncp_features = "last-down"``; ``"mid"`` = the mid block, the code's ``--use_middle_states``).

  An SDXL UNet's encoder gets the same pooled text embeds and time ids as the UNet (the NCP
  code's ``train_SDXL.py`` passes the UNet's ``added_cond_kwargs`` to it).

  Kept as options: ``ncp_step = "ddim"`` (a deterministic DDIM step with a stride of
  ``1000 / ncp_sampler_steps`` timesteps) and ``ncp_features = "sum-levels"`` (the sum over every
  down block and the mid block of each level's mean squared distance).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

SPACES = ("latent", "ncp")
NCP_STEPS = ("ddpm", "ddim")
NCP_FEATURES = ("last-down", "mid", "sum-levels")


def _bcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)


class NoiseConditionedFeatures(nn.Module):
    """A frozen copy of a UNet's encoder half: time embedding, ``conv_in``, down blocks, mid block.

    Conditioned as the UNet is: SD's optional pooled-text embedding (``addition_embed_type
    "text"``), or SDXL's pooled text embeds and time ids (``"text_time"``, passed as
    ``added_cond_kwargs``, as the NCP code's SDXL trainer passes them to its encoder).
    """

    def __init__(self, unet: nn.Module, levels: str = "sum-levels"):
        super().__init__()
        self.levels = levels
        self.addition_embed_type = getattr(unet.config, "addition_embed_type", None)
        if self.addition_embed_type not in (None, "text", "text_time") or getattr(unet, "class_embedding", None) is not None \
                or getattr(unet, "encoder_hid_proj", None) is not None or getattr(unet, "time_embed_act", None) is not None:
            raise NotImplementedError("NCP features support SD 1.x/2.x- and SDXL-style UNets (text or text_time added embeddings)")
        self.add_embedding = copy.deepcopy(unet.add_embedding) if self.addition_embed_type else None
        self.add_time_proj = copy.deepcopy(unet.add_time_proj) if self.addition_embed_type == "text_time" else None
        self.time_proj = copy.deepcopy(unet.time_proj)
        self.time_embedding = copy.deepcopy(unet.time_embedding)
        self.conv_in = copy.deepcopy(unet.conv_in)
        self.down_blocks = copy.deepcopy(unet.down_blocks)
        self.mid_block = copy.deepcopy(unet.mid_block)
        self.requires_grad_(False)
        self.eval()

    def _added(self, emb, encoder_hidden_states, added_cond_kwargs):
        """The added embedding, as ``UNet2DConditionModel.get_aug_embed`` computes it."""
        if self.addition_embed_type == "text":
            return self.add_embedding(encoder_hidden_states)
        if not added_cond_kwargs or "text_embeds" not in added_cond_kwargs or "time_ids" not in added_cond_kwargs:
            raise ValueError("an SDXL UNet's features need added_cond_kwargs with text_embeds and time_ids")
        text_embeds = added_cond_kwargs["text_embeds"]
        time_embeds = self.add_time_proj(added_cond_kwargs["time_ids"].flatten()).reshape((text_embeds.shape[0], -1))
        return self.add_embedding(torch.concat([text_embeds, time_embeds], dim=-1).to(emb.dtype))

    def forward(self, sample: torch.Tensor, timesteps: torch.Tensor, encoder_hidden_states: torch.Tensor,
                added_cond_kwargs: dict | None = None) -> list[torch.Tensor]:
        t_emb = self.time_proj(timesteps).to(dtype=sample.dtype)
        emb = self.time_embedding(t_emb)
        if self.addition_embed_type is not None:
            emb = emb + self._added(emb, encoder_hidden_states, added_cond_kwargs)
        h = self.conv_in(sample)
        features = []
        for block in self.down_blocks:
            if getattr(block, "has_cross_attention", False):
                h, _ = block(hidden_states=h, temb=emb, encoder_hidden_states=encoder_hidden_states)
            else:
                h, _ = block(hidden_states=h, temb=emb)
            features.append(h)
        if self.levels == "last-down":
            return [h]
        if self.mid_block is not None:
            if getattr(self.mid_block, "has_cross_attention", False):
                h = self.mid_block(h, emb, encoder_hidden_states=encoder_hidden_states)
            else:
                h = self.mid_block(h, emb)
            features.append(h)
        return features[-1:] if self.levels == "mid" else features


class Space:
    """Turns UNet predictions into per-sample distances to the target."""

    name = "latent"

    def __init__(self, noise_scheduler):
        self.scheduler = noise_scheduler
        self.prediction_type = noise_scheduler.config.prediction_type
        self.alphas_cumprod = noise_scheduler.alphas_cumprod.float()

    def to(self, device):
        self.alphas_cumprod = self.alphas_cumprod.to(device)
        return self

    def regression_target(self, latents, noise, timesteps):
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "v_prediction":
            return self.scheduler.get_velocity(latents, noise, timesteps)
        raise ValueError(f"unsupported prediction type {self.prediction_type}")

    needs_variance_noise = False

    def prepare(self, latents, noise, noisy, timesteps, encoder_hidden_states, variance_noise=None,
                added_cond_kwargs=None):
        """Per-step state shared by the policy and reference distances (the target)."""
        return self.regression_target(latents, noise, timesteps)

    def distance(self, pred, state, noisy, timesteps, encoder_hidden_states) -> torch.Tensor:
        err = (pred.float() - state.float()) ** 2
        return err.mean(dim=tuple(range(1, err.dim())))


class LatentSpace(Space):
    name = "latent"


class NCPSpace(Space):
    name = "ncp"

    def __init__(self, noise_scheduler, unet: nn.Module, sampler_steps: int = 50, step: str = "ddpm",
                 features: str = "last-down"):
        super().__init__(noise_scheduler)
        if step not in NCP_STEPS or features not in NCP_FEATURES:
            raise ValueError(f"ncp step must be one of {NCP_STEPS} and features one of {NCP_FEATURES}")
        self.features = NoiseConditionedFeatures(unet, features)
        self.step_kind = step
        total = int(noise_scheduler.config.num_train_timesteps)
        self.stride = 1 if step == "ddpm" else max(1, total // max(1, int(sampler_steps)))
        self.clip_sample = bool(getattr(noise_scheduler.config, "clip_sample", False))
        self.clip_range = float(getattr(noise_scheduler.config, "clip_sample_range", 1.0))

    @property
    def needs_variance_noise(self) -> bool:
        return self.step_kind == "ddpm"

    def to(self, device):
        super().to(device)
        self.features.to(device)
        return self

    def _alpha(self, timesteps):
        prev = timesteps - self.stride
        a_t = self.alphas_cumprod[timesteps]
        if self.step_kind == "ddpm":  # the reference: t-1 clamped at 0 (ᾱ_0 there, not 1)
            prev = prev.clamp(min=0)
            return a_t, self.alphas_cumprod[prev], prev
        a_prev = torch.where(prev >= 0, self.alphas_cumprod[prev.clamp(min=0)], torch.ones_like(a_t))
        return a_t, a_prev, prev.clamp(min=0)

    def _eps(self, pred, noisy, timesteps):
        if self.prediction_type == "epsilon":
            return pred
        a_t = _bcast(self.alphas_cumprod[timesteps], noisy)
        return a_t.sqrt() * pred.float() + (1 - a_t).sqrt() * noisy.float()  # v → ε

    def _step(self, eps, noisy, timesteps, variance_noise=None):
        """One reverse step from x_t with noise estimate ``eps``: DDPM to t-1 (shared variance
        noise) or DDIM (η=0) to t-stride."""
        a_t, a_prev, _ = self._alpha(timesteps)
        a_t, a_prev = _bcast(a_t, noisy), _bcast(a_prev, noisy)
        x = noisy.float()
        x0 = (x - (1 - a_t).sqrt() * eps.float()) / a_t.sqrt()
        if self.step_kind == "ddim":
            return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps.float()
        if self.clip_sample:
            x0 = x0.clamp(-self.clip_range, self.clip_range)
        beta_t = 1 - a_t / a_prev
        mean = (a_prev.sqrt() * beta_t / (1 - a_t)) * x0 + ((1 - beta_t).sqrt() * (1 - a_prev) / (1 - a_t)) * x
        variance = ((1 - a_prev) / (1 - a_t) * beta_t).clamp(min=1e-20)
        std = torch.where(_bcast(timesteps, noisy) > 0, variance.sqrt(), torch.zeros_like(variance))
        return mean + std * variance_noise.float()

    def prepare(self, latents, noise, noisy, timesteps, encoder_hidden_states, variance_noise=None,
                added_cond_kwargs=None):
        """The target's features, and what the distances need again (SDXL: the added conditioning)."""
        if self.needs_variance_noise and variance_noise is None:
            raise ValueError("the DDPM step of the NCP space needs variance noise")
        _, _, prev_t = self._alpha(timesteps)
        target = self._step(noise, noisy, timesteps, variance_noise)  # the true noise: x0 = latents
        with torch.no_grad():
            feats = self.features(target.to(noisy.dtype), prev_t, encoder_hidden_states, added_cond_kwargs)
        return [f.detach() for f in feats], prev_t, variance_noise, added_cond_kwargs

    def distance(self, pred, state, noisy, timesteps, encoder_hidden_states) -> torch.Tensor:
        target_feats, prev_t, variance_noise, added_cond_kwargs = state
        x_prev = self._step(self._eps(pred, noisy, timesteps), noisy, timesteps, variance_noise)
        feats = self.features(x_prev.to(noisy.dtype), prev_t, encoder_hidden_states, added_cond_kwargs)
        total = 0
        for f, g in zip(feats, target_feats):
            err = (f.float() - g.float()) ** 2
            total = total + err.mean(dim=tuple(range(1, err.dim())))
        return total


def make_space(name: str, noise_scheduler, unet, sampler_steps: int = 50, step: str = "ddpm",
               features: str = "last-down") -> Space:
    """Build the distance space; for ``ncp`` call before the LoRA is injected (the copy is of the base)."""
    if name == "latent":
        return LatentSpace(noise_scheduler)
    if name == "ncp":
        return NCPSpace(noise_scheduler, unet, sampler_steps, step, features)
    raise ValueError(f"unknown space {name!r}; expected one of {SPACES}")
