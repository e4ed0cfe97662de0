"""Model families: which diffusers pipeline a model folder holds, read from its ``model_index.json``.

The family decides how a UNet is conditioned (see :mod:`prefloop_worker.conditioning`): ``sd``
(Stable Diffusion 1.x/2.x: one CLIP text encoder) or ``sdxl`` (two text encoders, pooled text
embeddings and the added time ids). It is never configured by hand.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

# model_index.json `_class_name` → family name
PIPELINES = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl"}


@dataclass(frozen=True)
class ModelFamily:
    name: str  # "sd" or "sdxl"
    pipeline: str  # the diffusers pipeline class name

    @property
    def is_sdxl(self) -> bool:
        return self.name == "sdxl"

    def pipeline_class(self):
        import diffusers

        return getattr(diffusers, self.pipeline)


def model_family(path: str | os.PathLike) -> ModelFamily:
    """The family of a diffusers pipeline folder; ValueError naming the folder when it is none we support."""
    index = Path(path) / "model_index.json"
    if not index.exists():
        raise ValueError(f"{path} is not a diffusers pipeline folder (no model_index.json)")
    pipeline = json.loads(index.read_text()).get("_class_name")
    if pipeline not in PIPELINES:
        raise ValueError(f"{path}: pipeline {pipeline!r} is not supported (supported: {', '.join(PIPELINES)})")
    return ModelFamily(PIPELINES[pipeline], pipeline)
