from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "models" / "tiny-shapes"
TINY_ONNX = REPO / "models" / "tiny-shapes-onnx"
GOLDEN = REPO / "tests" / "fixtures" / "golden"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: exports a full-size (SD 1.5 shaped) model; ~1-3 min on 2 CPU cores")
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    assert (TINY / "model_index.json").exists(), "models/tiny-shapes is missing (python -m prefloop_worker make-tiny-model)"
    return TINY


@pytest.fixture(scope="session")
def tiny_onnx_dir() -> Path:
    assert (TINY_ONNX / "manifest.json").exists(), "models/tiny-shapes-onnx is missing (python -m prefloop_worker export-onnx)"
    return TINY_ONNX


def lora_feeds(manifest: dict, lora: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> dict:
    """The exported UNet's LoRA inputs: (A, B) per target module from `lora`, rank 0 for the rest."""
    feed = {}
    for t in manifest["lora"]["targets"]:
        a, b = (lora or {}).get(t["module"], (None, None))
        if a is None:
            a = np.zeros((0, t["shape_a"][1]), np.float32)
            b = np.zeros((t["shape_b"][0], 0), np.float32)
        feed[t["input_a"]], feed[t["input_b"]] = a, b
    return feed
