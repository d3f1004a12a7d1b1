"""The plugin's cache folder for generated files (random-weight checkpoints, dataset prompts)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "LEM_CACHE_DIR"


def cache_root() -> Path:
    """``$LEM_CACHE_DIR`` or ``~/.cache/pytest-llenergy``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pytest-llenergy"
