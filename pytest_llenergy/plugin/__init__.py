"""The pytest layer of pytest-llenergy (entry point ``pytest11: llenergy``).

One module per concern, each a plugin. Only the options, the hook specifications, the markers and
``activation`` load with every pytest run of the venv; ``activation`` registers the rest
(``lifecycle``, which registers the hook modules of ``lifecycle.PARTS`` and configures the session)
when the run uses the plugin.

Modules are registered directly (``register_modules``), never through ``pytest_plugins`` or
``import_plugin``: pytest marks each such name for assertion rewriting when it reaches it, and warns
(``PytestAssertRewriteWarning: Module already imported so cannot be rewritten``) for every one another
module imported first. An editable install (``pip install -e``) lists no package modules for pytest
to mark up front, so every run printed eleven such warnings, and a project with
``filterwarnings = error`` could not start pytest at all.
"""

from __future__ import annotations

import pytest

from pytest_llenergy.plugin import hookspec
from pytest_llenergy.plugin.registration import register_modules

PLUGIN_MODULES = (
    "pytest_llenergy.plugin.options",
    "pytest_llenergy.plugin.xdist",  # light; -n auto asks it for the worker count before pytest_configure
    "pytest_llenergy.plugin.activation",  # registers the rest when the run uses it (lifecycle.PARTS)
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add the ``pytest_lem_*`` hooks, then register the always-loaded modules (once per manager)."""
    pluginmanager.add_hookspecs(hookspec)
    register_modules(pluginmanager, PLUGIN_MODULES)
