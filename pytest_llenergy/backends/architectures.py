"""Shipped architecture configs for random-weight models (plain JSON: no torch, no pydantic).

Each ``model_configs/<name>.json`` is a transformers config dict (with ``model_type``) holding the
published architecture numbers of that model; ``_name_or_path`` names the source repository.
``tiny-*`` configs are two-layer models for tests and quick runs.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_llenergy.backends.errors import BackendError

_PACKAGE = "pytest_llenergy.backends"
_FOLDER = "model_configs"


@lru_cache(maxsize=1)
def shipped_names() -> tuple[str, ...]:
    """Names of the shipped architectures (``gpt2``, ``llama-3.2-1b``, ...), sorted."""
    folder = resources.files(_PACKAGE) / _FOLDER
    return tuple(sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json")))


def shipped_config(name: str) -> dict[str, Any]:
    """The shipped config dict for ``name`` (a fresh copy); BackendError when not shipped."""
    if name not in shipped_names():
        raise BackendError(f"no shipped architecture {name!r} (shipped: {', '.join(shipped_names())})")
    text = (resources.files(_PACKAGE) / _FOLDER / f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def resolve_architecture(name: str) -> tuple[dict[str, Any], str]:
    """Config dict and its origin for a random-weight model.

    ``name`` is a shipped architecture, a directory holding ``config.json``, or a ``.json`` file.
    Anything else is a BackendError listing the shipped names (never a hub lookup).
    """
    if name in shipped_names():
        return shipped_config(name), f"shipped:{name}"
    path = Path(name).expanduser()
    candidate = path / "config.json" if path.is_dir() else path
    if candidate.is_file() and candidate.suffix == ".json":
        try:
            config = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackendError(f"{candidate}: not a readable JSON config ({exc})") from None
        if not isinstance(config, dict) or "model_type" not in config:
            raise BackendError(f"{candidate}: a transformers config needs a `model_type` key")
        return config, str(candidate.resolve())
    raise BackendError(
        f"weights: random needs a shipped architecture or a local config; {name!r} is neither "
        f"(shipped: {', '.join(shipped_names())}; or a directory with config.json)"
    )
