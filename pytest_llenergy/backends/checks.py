"""What can be known about an experiment before loading anything: will its model and prompts load?

One validation for ``pytest`` (the preflight before the first item) and ``lem config show``.
Nothing here downloads or asks the hub: a pretrained model is looked up in a local directory or
the Hugging Face cache; when it is in neither and ``HF_HUB_OFFLINE`` is not set, one TCP connect
to the hub endpoint (``HF_ENDPOINT``, 3 s) tells whether a download could start at all, instead of
the ~50 s of retries and pages of tracebacks that loading would spend to find out.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_llenergy.backends.architectures import resolve_architecture
from pytest_llenergy.backends.base import BackendNotFound, get_backend
from pytest_llenergy.backends.datasets import cache_file
from pytest_llenergy.backends.errors import BackendError
from pytest_llenergy.backends.workload import PromptSourceError, read_prompt_file
from pytest_llenergy.config import Experiment

DEFAULT_ENDPOINT = "https://huggingface.co"
CONNECT_TIMEOUT_S = 3.0
_TRUE = ("1", "true", "yes", "on")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE


def hub_unreachable() -> str | None:
    """Why the hub endpoint cannot be reached (one TCP connect, no request), or None when it can."""
    endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    parts = urlsplit(endpoint)
    host = parts.hostname or endpoint
    port = parts.port or (80 if parts.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        return f"{endpoint} is not reachable ({getattr(exc, 'strerror', None) or exc})"
    return None


def in_hub_cache(repo_id: str) -> bool:
    """Whether the model's config.json is in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return True  # cannot tell: let loading say
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # a malformed id: loading gives the precise message
        return False
    return isinstance(found, str)


def backend_available(name: str) -> bool:
    try:
        return get_backend(name).available()[0]
    except BackendNotFound:
        return False


def model_problem(experiment: Experiment) -> str | None:
    """Why the experiment's model cannot load, as far as this can be known without loading it."""
    model = experiment.config.model
    if model is None or not backend_available(experiment.config.backend):
        return None  # an unavailable backend's items are skipped with their reason
    if model.weights == "random":
        try:
            resolve_architecture(model.name)
        except BackendError as exc:
            return f"model.name: {exc}"
        return None
    path = Path(model.name).expanduser()
    if path.exists() or model.name.startswith((".", "/", "~")):
        return None if path.is_dir() else f"model.name: {model.name!r}: no such model directory"
    if in_hub_cache(model.name):
        return None
    if hub_offline():
        return (f"model.name: {model.name!r} is not a local directory and not in the Hugging Face cache "
                "(HF_HUB_OFFLINE is set, so it cannot be downloaded; for random weights say weights: random)")
    unreachable = hub_unreachable()
    if unreachable:
        return (f"model.name: {model.name!r} is not a local directory and not in the Hugging Face cache, and "
                f"{unreachable}: download it on a connected machine, or say weights: random")
    return None


def dataset_problem(spec: Any, base_dir: str | None) -> str | None:
    """A dataset source needs its cached texts, or the `datasets` library to load them."""
    if cache_file(spec, base_dir).is_file() or importlib.util.find_spec("datasets") is not None:
        return None
    return (f"workload.prompts.dataset: {spec.dataset!r} needs the `datasets` library "
            "(pip install 'pytest-llenergy[datasets]') and is not in the prompt cache")


def prompt_problem(experiment: Experiment, base_dir: str | None) -> str | None:
    prompts = experiment.config.workload.prompts if experiment.config.workload else None
    if hasattr(prompts, "dataset"):
        return dataset_problem(prompts, base_dir)
    file = getattr(prompts, "file", None)
    if file is None:
        return None
    try:
        read_prompt_file(file, base_dir)
    except PromptSourceError as exc:
        return f"workload.prompts.file: {exc}"
    return None


def experiment_problems(experiments: Iterable[Experiment], base_dir: str | None) -> list[str]:
    """One line per distinct problem, naming the experiments it hits (the same text pytest and
    ``lem config show`` print)."""
    problems: dict[str, list[str]] = {}
    for experiment in experiments:
        for problem in (model_problem(experiment), prompt_problem(experiment, base_dir)):
            if problem is not None:
                problems.setdefault(problem, []).append(experiment.id)
    return [f"{p} ({_experiments(ids)})" for p, ids in problems.items()]


def _experiments(ids: list[str]) -> str:
    head = ", ".join(ids[:2]) + (f" and {len(ids) - 2} more" if len(ids) > 2 else "")
    return f"experiment {head}" if len(ids) == 1 else f"{len(ids)} experiments: {head}"
