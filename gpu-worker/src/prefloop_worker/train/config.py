"""Trainer configuration, and its mapping from a training job's payload (``extra`` included)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .objectives import CPO_VARIANTS, OBJECTIVES, RPO_VARIANTS
from .spaces import NCP_FEATURES, NCP_STEPS, SPACES

# extra.preset → option values applied before the job's own extra keys
PRESETS = {
    "diffusion-dpo": {"flip": True, "caption_dropout": 0.2},  # the official code's data defaults
}

# extra key (camelCase, as the platform writes it) → TrainConfig field
EXTRA_KEYS = {
    "sftWeight": "sft_weight",  # λ of CPO's SFT term
    "lambda": "sft_weight",
    "cpoVariant": "cpo_variant",
    "rpoTau": "rpo_tau",
    "tau": "rpo_tau",
    "rpoVariant": "rpo_variant",
    "ktoTies": "kto_ties",
    "ktoBothBad": "kto_both_bad",
    "ktoDesirableWeight": "kto_desirable_weight",
    "ktoUndesirableWeight": "kto_undesirable_weight",
    "ncpStep": "ncp_step",
    "ncpFeatures": "ncp_features",
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
    "cacheBytes": "cache_bytes",
    "shuffleBuffer": "shuffle_buffer",
    "gradientCheckpointing": "gradient_checkpointing",
    "optimizer": "optimizer",
    "progressEvery": "progress_every",
}
OPTIMIZERS = ("auto", "adamw", "adamw8bit")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")


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
    sft_weight: float | None = None  # CPO's λ: None = the variant's (reference 0, full-beta-sft 1)
    cpo_variant: str = "reference"
    rpo_tau: float = 0.5
    rpo_variant: str = "reference"
    kto_ties: bool = True  # KTO: a tie gives two desirable images (False: ties are dropped)
    kto_both_bad: bool = True  # KTO: a both-bad vote gives two undesirable images
    kto_desirable_weight: float = 1.0
    kto_undesirable_weight: float = 1.0
    ncp_step: str = "ddpm"  # ddpm: the reference's stochastic step to t-1; ddim: deterministic, stride 1000/ncp_sampler_steps
    ncp_features: str = "last-down"  # last-down (reference default), mid, sum-levels
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
    cache_bytes: int = 1 << 30  # bound of the in-memory latent + text-embedding cache (0: none)
    shuffle_buffer: int = 512  # pairs held for shuffling while streaming
    parent_adapter: str | None = None  # local folder of the parent's pytorch_lora_weights.safetensors
    parent_adapter_id: str | None = None
    # optimisation
    max_grad_norm: float = 1.0
    warmup_steps: int = 0
    weight_decay: float = 1e-2
    scale_lr: bool = False
    mixed_precision: str = "auto"  # auto = bf16 on a bf16 GPU, fp16 on other GPUs, fp32 on CPU
    optimizer: str = "auto"  # auto = 8-bit AdamW (bitsandbytes) on CUDA when installed, else AdamW
    gradient_checkpointing: bool = False
    # bookkeeping
    eval_every: int = 0  # 0 = about ten evaluations per run; < 0 = none
    eval_draws: int = 4  # (timestep, noise) draws per held-out pair, averaged before the sign
    checkpoint_every: int = 0  # 0 = never (a checkpoint is still written when stopped early)
    checkpoint_path: str | None = None
    metrics_path: str | None = None
    progress: bool | None = None  # None = a bar only on a terminal
    progress_every: int = 0  # steps between progress messages (0: about 20 per run)
    stop_after: int | None = None  # stop (checkpointed) after this many steps: interruption tests

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}")
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}")
        for name, allowed in (("cpo_variant", CPO_VARIANTS), ("rpo_variant", RPO_VARIANTS), ("ncp_step", NCP_STEPS),
                              ("ncp_features", NCP_FEATURES), ("optimizer", OPTIMIZERS), ("mixed_precision", MIXED_PRECISION)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")

    @property
    def variant(self) -> str:
        return {"cpo": self.cpo_variant, "rpo": self.rpo_variant}.get(self.objective, "reference")

    def fingerprint(self) -> dict:
        """What a checkpoint must agree with to be resumed."""
        keys = ("objective", "space", "beta", "rank", "alpha", "steps", "learning_rate", "batch_size",
                "gradient_accumulation", "seed", "base_model_id", "dataset_snapshot_id", "parent_adapter_id",
                "cpo_variant", "rpo_variant", "ncp_step", "ncp_features")
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
    extra = dict(payload.get("extra") or {})
    preset = extra.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown extra.preset {preset!r}; known: {sorted(PRESETS)}")
        values.update(PRESETS[preset])
    for key, value in extra.items():
        name = EXTRA_KEYS.get(key)
        if name is None:
            raise ValueError(f"unknown training option extra.{key}; known: {sorted([*EXTRA_KEYS, 'preset'])}")
        values[name] = value
    values.update(overrides)
    return TrainConfig(**values)
