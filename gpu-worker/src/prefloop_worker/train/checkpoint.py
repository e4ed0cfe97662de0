"""Training checkpoints that load without unpickling: one safetensors file.

Every tensor of the state (LoRA weights, optimizer moments, random-generator states) is a
safetensors tensor; everything else (step, data position, scheduler state, metrics history) is
JSON in the file's metadata, with each tensor replaced by ``{"__tensor__": name}``. Loading parses
JSON and reads raw tensors: nothing in the file can run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open


def _encode(value, name: str, tensors: dict):
    if isinstance(value, torch.Tensor):
        tensors[name] = value.detach().cpu().clone().contiguous()
        return {"__tensor__": name}
    if isinstance(value, dict):
        return {"__dict__": [[k, _encode(v, f"{name}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{name}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{name}.{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint value {name} of type {type(value).__name__} is neither a tensor nor JSON")


def _decode(value, tensors: dict):
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__dict__" in value:
            return {k: _decode(v, tensors) for k, v in value["__dict__"]}
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        raise ValueError("malformed checkpoint metadata")
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(state, "s", tensors)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={"format": "prefloop.checkpoint/v2", "state": json.dumps(skeleton)})
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata() or {}
    if metadata.get("format") != "prefloop.checkpoint/v2":
        raise ValueError(f"{path} is not a prefloop checkpoint")
    return _decode(json.loads(metadata["state"]), load_file(str(path)))
