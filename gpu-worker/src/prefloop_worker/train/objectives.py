"""Preference objectives as pure functions of per-sample distances.

Every function takes per-sample distances (shape ``[N]``): ``model_w`` / ``model_l`` are the
policy's distance to the target for the winner / loser image of each pair, ``ref_*`` the same with
the reference model (base, or base + parent adapter). In latent space the distance is the ε-MSE
averaged over C, H, W; in NCP space the feature distance of :mod:`prefloop_worker.train.spaces`.
Nothing here touches a model.

One β convention for every objective: ``beta`` is the official Diffusion-DPO β, and every
objective uses ``½β`` where its reference code has one temperature (the NCP code's ``beta_dpo``,
RPO's and KTO's β). :data:`FORMULAS` holds the exact formula of each objective and variant; the
adapter's manifest copies it. The defaults are the reference code's (see ../shared/DESIGN.md,
"Preference objectives"):

* ``dpo`` (SalesforceAIResearch/DiffusionDPO)::

      inside = -½β·((model_w - model_l) - (ref_w - ref_l));  loss = -logsigmoid(inside).mean()

* ``cpo`` (NCP code, ``--loss_type cpo``; reference-free)::

      loss = -logsigmoid(-½β·(model_w - model_l)).mean() + λ·model_w.mean()      (λ = 0)

  variant ``full-beta-sft``: ``-logsigmoid(-β·(model_w - model_l)).mean() + λ·model_w.mean()``, λ = 1.

* ``sft``: ``model_w.mean()`` (winners only).

* ``rpo`` (yinyueqin/relative-preference-optimization): every winner i against every loser j of
  the batch, ``W = softmax_j(-cosdist(emb_i, emb_j)/τ)``::

      inside[i,j] = -½β·((model_w[i] - ref_w[i]) - (model_l[j] - ref_l[j]))
      loss = mean_i mean_j -logsigmoid(inside[i,j]·W[i,j])                     (weights inside)

  variant ``weights-outside``: ``mean_i Σ_j W[i,j]·(-logsigmoid(inside[i,j]))`` (identity W = DPO).

* ``kto`` (jacklishufan/diffusion-kto, ``--halo sigmoid``): single images, ``y = +1`` desirable,
  ``-1`` undesirable::

      g = -(model - ref);  z = max(0, mean(g)) (no gradient);  h = sigmoid(y·½β·(g - z))
      loss = mean(λ_y·(1 - h))                                                     (λ_d = λ_u = 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

OBJECTIVES = ("dpo", "cpo", "sft", "rpo", "kto")
CPO_VARIANTS = ("reference", "full-beta-sft")
RPO_VARIANTS = ("reference", "weights-outside")

FORMULAS = {
    ("dpo", "reference"): "loss = mean(-logsigmoid(-0.5*beta*((dmodel_w - dmodel_l) - (dref_w - dref_l))))",
    ("cpo", "reference"): "loss = mean(-logsigmoid(-0.5*beta*(dmodel_w - dmodel_l))) + sftWeight*mean(dmodel_w)",
    ("cpo", "full-beta-sft"): "loss = mean(-logsigmoid(-beta*(dmodel_w - dmodel_l))) + sftWeight*mean(dmodel_w)",
    ("sft", "reference"): "loss = mean(dmodel_w)",
    ("rpo", "reference"): "inside[i,j] = -0.5*beta*((dmodel_w[i] - dref_w[i]) - (dmodel_l[j] - dref_l[j])); "
                          "W = softmax_j(-cosdist(emb_i, emb_j)/tau); loss = mean_i mean_j(-logsigmoid(inside[i,j]*W[i,j]))",
    ("rpo", "weights-outside"): "inside[i,j] as in rpo; loss = mean_i sum_j W[i,j]*(-logsigmoid(inside[i,j]))",
    ("kto", "reference"): "g = -(dmodel - dref); z = max(0, mean(g)) detached; "
                          "loss = mean(lambda_y*(1 - sigmoid(y*0.5*beta*(g - z)))), y = +1 desirable, -1 undesirable",
}


def formula(objective: str, variant: str = "reference") -> str:
    return FORMULAS[(objective, variant if objective in ("cpo", "rpo") else "reference")]


@dataclass
class PreferenceTerms:
    """What every objective reports besides its loss (per pair, or per image for KTO)."""

    loss: torch.Tensor
    inside: torch.Tensor  # > 0: the policy moves the way the vote says, relative to the reference
    reward_w: torch.Tensor  # implicit reward of the winner (KTO: of the pair's first image): -½β(model - ref)
    reward_l: torch.Tensor


def implicit_rewards(model: torch.Tensor, ref: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO implicit reward of each image: -½·β·(model - ref)."""
    return -0.5 * beta * (model - ref)


def dpo_inside(model_w, model_l, ref_w, ref_l, beta: float) -> torch.Tensor:
    """The argument of the sigmoid in Diffusion-DPO, per pair."""
    return -0.5 * beta * ((model_w - model_l) - (ref_w - ref_l))


def implicit_accuracy(inside: torch.Tensor) -> torch.Tensor:
    """Share of pairs whose DPO logit is positive; exact ties count ½."""
    inside = inside.detach().float()
    if inside.numel() == 0:
        return torch.tensor(float("nan"))
    return (inside > 0).float().mean() + 0.5 * (inside == 0).float().mean()


def _pair_terms(loss, model_w, model_l, ref_w, ref_l, beta) -> PreferenceTerms:
    return PreferenceTerms(
        loss,
        dpo_inside(model_w, model_l, ref_w, ref_l, beta),
        implicit_rewards(model_w, ref_w, beta),
        implicit_rewards(model_l, ref_l, beta),
    )


def dpo_loss(model_w, model_l, ref_w, ref_l, beta: float) -> PreferenceTerms:
    inside = dpo_inside(model_w, model_l, ref_w, ref_l, beta)
    loss = -F.logsigmoid(inside).mean()
    return PreferenceTerms(loss, inside, implicit_rewards(model_w, ref_w, beta), implicit_rewards(model_l, ref_l, beta))


def cpo_loss(model_w, model_l, ref_w, ref_l, beta: float, sft_weight: float = 0.0,
             variant: str = "reference") -> PreferenceTerms:
    """Reference-free contrast (+ λ·SFT on winners). ``ref_*`` only feed the diagnostics (may be zeros)."""
    if variant not in CPO_VARIANTS:
        raise ValueError(f"cpo variant must be one of {CPO_VARIANTS}")
    temperature = beta if variant == "full-beta-sft" else 0.5 * beta
    loss = -F.logsigmoid(-temperature * (model_w - model_l)).mean()
    if sft_weight:
        loss = loss + sft_weight * model_w.mean()
    return _pair_terms(loss, model_w, model_l, ref_w, ref_l, beta)


def sft_loss(model_w, model_l, ref_w, ref_l, beta: float) -> PreferenceTerms:
    """Plain diffusion loss on winners; losers and reference only feed the diagnostics (may be zeros)."""
    return _pair_terms(model_w.mean(), model_w, model_l, ref_w, ref_l, beta)


def cosine_distance_matrix(emb_a: torch.Tensor, emb_b: torch.Tensor) -> torch.Tensor:
    """``D[i, j] = 1 - cos(emb_a[i], emb_b[j])`` for row-vector embeddings."""
    a = F.normalize(emb_a.float().flatten(1), dim=-1)
    b = F.normalize(emb_b.float().flatten(1), dim=-1)
    return 1.0 - a @ b.T


def rpo_weights(emb_w: torch.Tensor, emb_l: torch.Tensor, tau: float = 0.5) -> torch.Tensor:
    """Row-stochastic weights ``softmax_j(-cosine_distance(emb_w[i], emb_l[j]) / τ)``."""
    return torch.softmax(-cosine_distance_matrix(emb_w, emb_l) / tau, dim=-1)


def rpo_loss(model_w, model_l, ref_w, ref_l, beta: float, weights: torch.Tensor,
             variant: str = "reference") -> PreferenceTerms:
    """RPO over all winner/loser combinations of the batch (module docstring for both variants).

    The reported ``inside`` is the diagonal (the actual pairs), so the diagnostics match DPO's.
    """
    if variant not in RPO_VARIANTS:
        raise ValueError(f"rpo variant must be one of {RPO_VARIANTS}")
    dw = (model_w - ref_w)[:, None]
    dl = (model_l - ref_l)[None, :]
    inside_all = -0.5 * beta * (dw - dl)
    weights = weights.to(inside_all.dtype)
    if variant == "reference":
        loss = -F.logsigmoid(inside_all * weights).mean(dim=-1).mean()
    else:
        loss = (weights * -F.logsigmoid(inside_all)).sum(dim=-1).mean()
    return _pair_terms(loss, model_w, model_l, ref_w, ref_l, beta)


def kto_loss(model, ref, desirable, beta: float, *, desirable_weight: float = 1.0, undesirable_weight: float = 1.0,
             kl: torch.Tensor | None = None) -> PreferenceTerms:
    """Diffusion-KTO on single images: ``model``/``ref`` ``[M]`` distances, ``desirable`` ``[M]`` bools.

    ``kl`` is the reference point before clamping (default: the batch mean of ``-(model - ref)``;
    several processes pass their all-reduced mean). ``inside`` is ``y·½β·(g - z)`` per image.
    """
    desirable = desirable.to(torch.bool)
    g = -(model - ref)
    z = (g.mean() if kl is None else kl).detach().clamp(min=0)
    sign = desirable.to(g.dtype) * 2 - 1
    inside = sign * 0.5 * beta * (g - z)
    weight = torch.where(desirable, torch.full_like(g, desirable_weight), torch.full_like(g, undesirable_weight))
    loss = (weight * (1 - torch.sigmoid(inside))).mean()
    rewards = implicit_rewards(model, ref, beta)
    half = rewards.shape[0] // 2
    return PreferenceTerms(loss, inside, rewards[:half], rewards[half:])


def preference_loss(
    objective: str,
    model_w,
    model_l,
    ref_w,
    ref_l,
    *,
    beta: float,
    sft_weight: float | None = None,
    rpo_weight_matrix: torch.Tensor | None = None,
    variant: str = "reference",
    desirable: torch.Tensor | None = None,
) -> PreferenceTerms:
    """One entry for every pairwise objective; for ``kto`` the images of a pair are ``model_w[i]``
    and ``model_l[i]`` and ``desirable`` (``[2N]``: firsts then seconds) says which are wanted."""
    if objective == "dpo":
        return dpo_loss(model_w, model_l, ref_w, ref_l, beta)
    if objective == "cpo":
        if sft_weight is None:
            sft_weight = 1.0 if variant == "full-beta-sft" else 0.0
        return cpo_loss(model_w, model_l, ref_w, ref_l, beta, sft_weight, variant)
    if objective == "sft":
        return sft_loss(model_w, model_l, ref_w, ref_l, beta)
    if objective == "rpo":
        if rpo_weight_matrix is None:
            raise ValueError("rpo needs a weight matrix (rpo_weights of the prompt embeddings)")
        return rpo_loss(model_w, model_l, ref_w, ref_l, beta, rpo_weight_matrix, variant)
    if objective == "kto":
        if desirable is None:
            raise ValueError("kto needs the desirable flags of the images")
        return kto_loss(torch.cat([model_w, model_l]), torch.cat([ref_w, ref_l]), desirable, beta)
    raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
