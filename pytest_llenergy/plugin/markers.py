"""The plugin's markers, declared without importing anything heavy (registered in every run)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

REGISTERED = pytest.StashKey[bool]()


def energy_budget(*, energy_per_output_token: float | str | None = None, energy_per_token: float | str | None = None,
                  energy: float | str | None = None, mean_power: float | str | None = None,
                  tolerance: float | str = 0.0, adjusted: bool = True) -> None:
    """Fail the test when a measured figure exceeds its limit (J, W or strings such as "0.45 J", "2 Wh", "300 W")."""


MARKERS: dict[str, Callable[..., None]] = {"energy_budget": energy_budget}


def register_markers(config: pytest.Config) -> None:
    """``--markers`` help generated from each function's signature and docstring (once per config)."""
    if config.stash.get(REGISTERED, False):
        return
    config.stash[REGISTERED] = True
    for name, func in MARKERS.items():
        params = ", ".join(f"{p}=..." for p in inspect.signature(func).parameters)
        config.addinivalue_line("markers", f"{name}({params}): {inspect.getdoc(func)}")
