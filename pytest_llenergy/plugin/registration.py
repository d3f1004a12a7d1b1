"""Registering the plugin's modules without pytest's rewrite marking (see ``plugin/__init__``)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import pytest


def register_modules(manager: pytest.PytestPluginManager, names: Iterable[str]) -> None:
    """Import and register each module under its own name, once, unless blocked (``-p no:NAME``)."""
    for name in names:
        if manager.get_plugin(name) is None and not manager.is_blocked(name):
            manager.register(importlib.import_module(name), name)
