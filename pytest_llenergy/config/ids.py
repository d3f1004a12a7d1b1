"""Stable experiment ids: readable prefix plus a hash of the effective config."""

from __future__ import annotations

import hashlib
import json
import re

from pytest_llenergy.config.experiment import ExperimentConfig

HASH_CHARS = 8
_PRECISION_SHORT = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
_UNSAFE = re.compile(r"[^a-z0-9.]+")


def config_hash(config: ExperimentConfig) -> str:
    """Hash of everything that changes the measurement (the label `name` excluded)."""
    payload = config.model_dump(mode="json", exclude={"name"})
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def model_slug(name: str) -> str:
    """``meta-llama/Llama-3.2-1B`` -> ``llama-3.2-1b``."""
    tail = name.rstrip("/").rsplit("/", 1)[-1].lower()
    return _UNSAFE.sub("-", tail).strip("-.") or "model"


def experiment_id(config: ExperimentConfig) -> str:
    """``transformers-gpt2-bs8-bf16-3f9a1c2e``, or ``<name>-3f9a1c2e`` for a named experiment."""
    digest = config_hash(config)
    if config.name:
        return f"{config.name}-{digest}"
    model = model_slug(config.model.name) if config.model else "nomodel"
    precision = _PRECISION_SHORT[config.precision]
    return f"{config.backend}-{model}-bs{config.workload.batch_size}-{precision}-{digest}"
