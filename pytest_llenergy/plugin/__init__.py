"""The pytest layer of pytest-llenergy (entry point ``pytest11: llenergy``).

One module per concern, each registered as a plugin below.
"""

from __future__ import annotations

import pytest

pytest_plugins = [
    "pytest_llenergy.plugin.options",
    "pytest_llenergy.plugin.xdist",
    "pytest_llenergy.plugin.collection",
    "pytest_llenergy.plugin.budgets",
    "pytest_llenergy.plugin.compare",
    "pytest_llenergy.plugin.gates",
    "pytest_llenergy.plugin.runtest",
    "pytest_llenergy.plugin.measurement",
    "pytest_llenergy.plugin.energy_fixture",
    "pytest_llenergy.plugin.gaps",
    "pytest_llenergy.plugin.adaptive",
    "pytest_llenergy.plugin.reporting",
    "pytest_llenergy.plugin.notify",
    "pytest_llenergy.plugin.manifest",
    "pytest_llenergy.plugin.resume",
    "pytest_llenergy.plugin.dispatch",
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspec

    pluginmanager.add_hookspecs(hookspec)
