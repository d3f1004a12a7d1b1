"""The pytest layer of pytest-llenergy (entry point ``pytest11: llenergy``).

One module per concern, each a plugin. Only the options, the hook specifications and the markers
load with every pytest run of the venv; ``activation`` registers the rest (``activation.MODULES``)
when the run uses the plugin.
"""

from __future__ import annotations

import pytest

from pytest_llenergy.plugin import hookspec

pytest_plugins = [
    "pytest_llenergy.plugin.options",
    "pytest_llenergy.plugin.xdist",  # light; -n auto asks it for the worker count before pytest_configure
    "pytest_llenergy.plugin.activation",  # registers the rest when the run uses it (activation.MODULES)
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)
