"""The pytest layer of pytest-llenergy (entry point ``pytest11: llenergy``).

One module per concern, each registered as a plugin below (under its module name, in this order).

They are registered directly, not through ``pytest_plugins``: pytest marks each ``pytest_plugins``
name for assertion rewriting when it reaches it, and warns (``PytestAssertRewriteWarning: Module
already imported so cannot be rewritten``) for every one another module imported first. An
editable install (``pip install -e``) lists no package modules for pytest to mark up front, so
every run printed eleven such warnings, and a project with ``filterwarnings = error`` could not
start pytest at all.
"""

from __future__ import annotations

import importlib

import pytest

from pytest_llenergy.plugin import hookspec

PLUGIN_MODULES = (
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
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add the ``pytest_lem_*`` hooks, then register every plugin module (once per manager)."""
    pluginmanager.add_hookspecs(hookspec)
    for name in PLUGIN_MODULES:
        if pluginmanager.get_plugin(name) is None and not pluginmanager.is_blocked(name):
            pluginmanager.register(importlib.import_module(name), name)
