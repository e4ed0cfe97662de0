"""Validation of training jobs, progress and result messages against the JSON Schemas in ``contracts/``.

The schemas are generated from the zod source of truth (functions/src/contracts/jobs.ts) into the
repository's ``contracts/`` folder; this package carries byte-identical copies (package data, so
the container needs no repository checkout; a test keeps them identical).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import jsonschema

SCHEMAS = ("training-job", "training-result", "training-progress")


class ContractError(ValueError):
    pass


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    if name not in SCHEMAS:
        raise KeyError(name)
    text = resources.files(__package__).joinpath("contracts", f"{name}.schema.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=None)
def _validator(name: str):
    s = schema(name)
    cls = jsonschema.validators.validator_for(s)
    return cls(s, format_checker=cls.FORMAT_CHECKER)


def validate(name: str, message: dict) -> dict:
    errors = sorted(_validator(name).iter_errors(message), key=lambda e: list(e.path))
    if errors:
        detail = "; ".join(f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5])
        raise ContractError(f"invalid {name} message: {detail}")
    return message


def validate_training_job(message: dict) -> dict:
    """Validate and fill the schema's defaults (parentAdapterId, gradientAccumulation, extra)."""
    validate("training-job", message)
    payload = message["payload"]
    payload.setdefault("parentAdapterId", None)
    payload.setdefault("parentAdapterUri", None)
    payload.setdefault("gradientAccumulation", 1)
    payload.setdefault("extra", {})
    return message


def validate_training_result(message: dict) -> dict:
    return validate("training-result", message)


def validate_training_progress(message: dict) -> dict:
    return validate("training-progress", message)
