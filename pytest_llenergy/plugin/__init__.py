"""The pytest layer of pytest-llenergy (entry point ``pytest11: llenergy``).

One module per concern, each registered as a plugin below.
"""

from __future__ import annotations

import pytest

from pytest_llenergy.plugin import hookspec

pytest_plugins = [
    "pytest_llenergy.plugin.options",
    "pytest_llenergy.plugin.xdist",
    "pytest_llenergy.plugin.collection.hooks",
    "pytest_llenergy.plugin.collection.preflight",
    "pytest_llenergy.plugin.gates.budgets",
    "pytest_llenergy.plugin.gates.compare",
    "pytest_llenergy.plugin.gates.verdicts",
    "pytest_llenergy.plugin.measurement.runtest",
    "pytest_llenergy.plugin.measurement.context",
    "pytest_llenergy.plugin.measurement.threads",
    "pytest_llenergy.plugin.measurement.carbon",
    "pytest_llenergy.plugin.measurement.fixture",
    "pytest_llenergy.plugin.measurement.gaps",
    "pytest_llenergy.plugin.collection.adaptive",
    "pytest_llenergy.plugin.collection.search",
    "pytest_llenergy.plugin.reporting.session",
    "pytest_llenergy.plugin.reporting.plain",
    "pytest_llenergy.plugin.reporting.notify",
    "pytest_llenergy.plugin.reporting.manifest",
    "pytest_llenergy.plugin.collection.resume",
    "pytest_llenergy.plugin.dispatch.hooks",
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)
