"""The machinery's parts and the session's configure steps, in order, in one table (``PARTS``).

This module wires the parts together: it alone imports every sub-package (the parts import only
``base``, ``session`` and the other top-level modules). ``activation`` registers it when the run uses
the plugin (at configure time, or after collection when a test first uses it); its one
``pytest_configure`` then goes down ``PARTS``: it registers each hook module and runs that part's
configure step on the session. A step's plugins are so registered between the modules, as ever: pluggy
calls hooks of equal rank last-registered first, so this one order also fixes the order of hooks.

Before it, in every pytest run of the venv: ``options`` checks ini values, ``xdist`` pins a worker's
GPUs (``tryfirst``), ``activation`` registers the markers and decides whether to load the machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest

from pytest_llenergy.plugin.base import session_of
from pytest_llenergy.plugin.collection import adaptive, preflight, resume, search
from pytest_llenergy.plugin.collection import hooks as collection
from pytest_llenergy.plugin.dispatch import hooks as dispatch
from pytest_llenergy.plugin.gates import budgets, compare, verdicts
from pytest_llenergy.plugin.measurement import carbon, context, fixture, gaps, runtest, threads
from pytest_llenergy.plugin.registration import register_modules
from pytest_llenergy.plugin.reporting import manifest, notify, plain
from pytest_llenergy.plugin.reporting import session as reporting
from pytest_llenergy.plugin.session import LemSession

Step = Callable[[LemSession], None]


class Part(NamedTuple):
    """A hook module of the machinery and the configure step it contributes (None: hooks only)."""

    module: str
    step: str | None = None
    run: Step | None = None


PARTS: tuple[Part, ...] = (
    Part(collection.__name__, "load the campaign into session.run", collection.load_campaign),
    Part(preflight.__name__, "check that the results directory can be written", preflight.check_outputs),
    Part(budgets.__name__, "register the markers", budgets.register),
    Part(compare.__name__, "load the compare rules and the saved run to compare with", compare.load_comparison),
    Part(verdicts.__name__, "install the gates (budgets, comparison)", verdicts.install),
    Part(runtest.__name__),
    Part(context.__name__, "install the measurement context (checked now with a campaign)", context.install),
    Part(threads.__name__, "choose the CPU threads", threads.choose),
    Part(carbon.__name__, "resolve the carbon and cost settings", carbon.resolve_settings),
    Part(fixture.__name__),
    Part(gaps.__name__),
    Part(adaptive.__name__),
    Part(search.__name__, "start the search race", search.start),
    Part(reporting.__name__, "register the session-end reporting", reporting.register),
    Part(plain.__name__, "collect plain tests' windows", plain.register),
    Part(notify.__name__, "register webhooks", notify.register),
    Part(manifest.__name__, "register the manifest", manifest.register),
    Part(resume.__name__, "choose the run to resume", resume.register),
    Part(dispatch.__name__, "route items to containers (or serve inside one)", dispatch.register),
)
"""Each step reads what earlier ones set on the session (most need ``run``)."""


def pytest_configure(config: pytest.Config) -> None:
    """Register each part's hook module and run its configure step, in ``PARTS`` order."""
    session, manager = session_of(config), config.pluginmanager
    for part in PARTS:
        register_modules(manager, [part.module])  # not import_plugin: no rewrite warnings (plugin/__init__)
        if part.run is not None and manager.get_plugin(part.module) is not None:  # unless -p no:MODULE
            part.run(session)
