"""Trainer configuration, and its mapping from a training job's payload (``extra`` included)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .objectives import OBJECTIVES
from .spaces import SPACES

# extra key (camelCase, as the platform writes it) → TrainConfig field
EXTRA_KEYS = {
    "sftWeight": "sft_weight",  # λ of CPO's SFT term
    "lambda": "sft_weight",
    "rpoTau": "rpo_tau",
    "tau": "rpo_tau",
    "captionDropout": "caption_dropout",
    "randomCrop": "random_crop",
    "flip": "flip",
    "absoluteWinners": "absolute_winners",
    "keepTiesForMetrics": "keep_ties_for_metrics",
    "excludeFlagged": "exclude_flagged",
    "heldoutFraction": "heldout_fraction",
    "heldoutMax": "heldout_max",
    "evalEvery": "eval_every",
    "evalDraws": "eval_draws",
    "checkpointEvery": "checkpoint_every",
    "maxGradNorm": "max_grad_norm",
    "warmupSteps": "warmup_steps",
    "weightDecay": "weight_decay",
    "scaleLr": "scale_lr",
    "ncpSamplerSteps": "ncp_sampler_steps",
    "resolution": "resolution",
    "mixedPrecision": "mixed_precision",
    "maxPairs": "max_pairs",
    "latentCacheMax": "latent_cache_max",
    "cacheDir": "cache_dir",
}


@dataclass
class TrainConfig:
    base_model: str  # local diffusers folder
    dataset: str  # local Parquet file or folder
    output_dir: str  # local folder the adapter is written to
    objective: str = "dpo"
    space: str = "latent"
    beta: float = 5000.0  # official Diffusion-DPO β (used with the ½ inside the sigmoid)
    rank: int = 4
    alpha: float = 4.0
    steps: int = 100
    learning_rate: float = 1e-4
    batch_size: int = 4  # pairs per device per micro-step
    gradient_accumulation: int = 1
    seed: int = 0
    base_model_id: str = "base"
    dataset_snapshot_id: str = "snapshot"
    # objective options
    sft_weight: float = 1.0
    rpo_tau: float = 0.5
    ncp_sampler_steps: int = 50
    # data options
    caption_dropout: float = 0.0
    random_crop: bool = False
    flip: bool = False
    absolute_winners: bool = False
    keep_ties_for_metrics: bool = False
    exclude_flagged: bool = True
    heldout_fraction: float = 0.1
    heldout_max: int = 64
    max_pairs: int | None = None
    resolution: int | None = None
    latent_cache_max: int = 200_000  # pairs; above this latents are encoded every step
    cache_dir: str | None = None
    # optimisation
    max_grad_norm: float = 1.0
    warmup_steps: int = 0
    weight_decay: float = 1e-2
    scale_lr: bool = False
    mixed_precision: str = "auto"  # auto = bf16 autocast on CUDA with bf16 support, else fp32
    # bookkeeping
    eval_every: int = 0  # 0 = about ten evaluations per run; < 0 = none
    eval_draws: int = 4  # (timestep, noise) draws per held-out pair, averaged before the sign
    checkpoint_every: int = 0  # 0 = never (a checkpoint is still written when stopped early)
    checkpoint_path: str | None = None
    metrics_path: str | None = None
    progress: bool | None = None  # None = a bar only on a terminal
    stop_after: int | None = None  # stop (checkpointed) after this many steps: interruption tests

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}")
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}")

    def fingerprint(self) -> dict:
        """What a checkpoint must agree with to be resumed."""
        keys = ("objective", "space", "beta", "rank", "alpha", "steps", "learning_rate", "batch_size",
                "gradient_accumulation", "seed", "base_model_id", "dataset_snapshot_id")
        return {k: getattr(self, k) for k in keys}

    def to_dict(self) -> dict:
        return asdict(self)


def config_from_job(payload: dict, *, base_model: str, dataset: str, output_dir: str, **overrides) -> TrainConfig:
    """Map a validated training job's payload onto a TrainConfig; unknown ``extra`` keys are an error
    (only the documented camelCase options: a job cannot redirect paths such as the checkpoint)."""
    values = dict(
        base_model=base_model,
        dataset=dataset,
        output_dir=output_dir,
        objective=payload["objective"],
        space=payload["space"],
        beta=float(payload["beta"]),
        rank=int(payload["rank"]),
        alpha=float(payload["alpha"]),
        steps=int(payload["steps"]),
        learning_rate=float(payload["learningRate"]),
        batch_size=int(payload["batchSize"]),
        gradient_accumulation=int(payload.get("gradientAccumulation", 1)),
        seed=int(payload["seed"]),
        base_model_id=payload["baseModelId"],
        dataset_snapshot_id=payload["datasetSnapshotId"],
    )
    for key, value in (payload.get("extra") or {}).items():
        name = EXTRA_KEYS.get(key)
        if name is None:
            raise ValueError(f"unknown training option extra.{key}; known: {sorted(EXTRA_KEYS)}")
        values[name] = value
    values.update(overrides)
    return TrainConfig(**values)
