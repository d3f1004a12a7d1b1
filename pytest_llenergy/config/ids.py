"""Stable experiment ids: readable prefix plus a hash of the effective config.

``<backend>-<model>-bs<batch>-<precision>[-<varied grid values>]-<hash>``. The hash covers the
whole effective config; the values of grid dimensions that vary within the campaign (other than
backend, model, batch size and precision, already in the prefix) are spelled out before it, so
``sdpa`` and ``eager`` points differ in more than their hash: a string value as itself
(``sdpa``), anything else with its field's name (``use-cache-false``, ``max-new-tokens-64``).
Ids are the keys results, ``--lem-resume`` and saved runs use: an experiment's id changes only
when its config or the set of varied dimensions does; a campaign without such a dimension keeps
the ids it always had.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from pytest_llenergy.config.experiment import ExperimentConfig
from pytest_llenergy.config.sections import BACKEND_SECTIONS

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


IN_PREFIX = frozenset({"backend", "model", "model.name", "workload.batch_size", "precision"})
"""Grid paths whose value the id's prefix already shows."""
_VALUE_CHARS = 24


def path_value(payload: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a config dump (None where absent)."""
    node: Any = payload
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _token(path: str, value: Any) -> str:
    if isinstance(value, str) and value and not re.fullmatch(r"[-+\d.e]+", value):
        return _UNSAFE.sub("-", value.lower()).strip("-.")[:_VALUE_CHARS] or "x"
    name = _UNSAFE.sub("-", path.rsplit(".", 1)[-1].lower()).strip("-.")
    if isinstance(value, bool) or value is None:
        text = {True: "true", False: "false", None: "none"}[value]
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ":")) if isinstance(value, dict | list) else str(value)
    return f"{name}-{_UNSAFE.sub('-', text.lower()).strip('-.')[:_VALUE_CHARS] or 'x'}"


def experiment_id(config: ExperimentConfig, varied: Sequence[str] = ()) -> str:
    """``transformers-gpt2-bs8-bf16-3f9a1c2e``, or ``<name>-3f9a1c2e`` for a named experiment.

    ``varied``: the campaign's grid paths that take more than one value; this config's values of
    those not already in the prefix go before the hash (``...-fp32-sdpa-3f9a1c2e``).
    """
    digest = config_hash(config)
    if config.name:
        return f"{config.name}-{digest}"
    model = model_slug(config.model.name) if config.model else "nomodel"
    precision = _PRECISION_SHORT[config.precision]
    shown = [p for p in varied if p not in IN_PREFIX
             and (p.split(".", 1)[0] not in BACKEND_SECTIONS or p.split(".", 1)[0] == config.backend)]
    payload = config.model_dump(mode="json", exclude={"name"}) if shown else {}
    values = "".join(f"-{_token(p, path_value(payload, p))}" for p in shown)
    return f"{config.backend}-{model}-bs{config.workload.batch_size}-{precision}{values}-{digest}"
