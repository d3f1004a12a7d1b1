"""Names of the backends a campaign may use: built-ins plus the `pytest_llenergy.backends` entry points."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "pytest_llenergy.backends"
BUILTIN_BACKENDS = ("transformers", "vllm", "tensorrt")


@lru_cache(maxsize=1)
def known_backends() -> frozenset[str]:
    """Built-in backend names and those third parties registered (names only; nothing imported)."""
    names = set(BUILTIN_BACKENDS)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return frozenset(names)
