"""When the plugin's machinery loads: only for runs that use it (issue 26, finding 7).

The entry point registers the options, the hook specifications, the markers and this module:
nothing heavy. The modules that measure, gate and report (and the campaign schema, numpy, pandas,
scipy and pyarrow behind them) are registered

- in ``pytest_configure`` when the run names a campaign (option, ini or the default-campaign hook),
  sets any ``--lem-*`` option or ``lem_*`` ini value, or is distributed by pytest-xdist; or
- after collection, when an item uses one of the plugin's fixtures or the ``energy_budget`` marker.

Registering means registering ``lifecycle`` (``MACHINERY``), whose ``pytest_configure`` (a historic
hook: it runs as it registers) registers the hook modules and configures the session in one ordered
table; when they load after collection, the session-start and collection hooks they missed are
replayed for them alone. A run that uses none of it (a plain test suite in the same venv) loads none of it.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import pytest

from pytest_llenergy.plugin.markers import MARKERS, register_markers
from pytest_llenergy.plugin.options import OPTIONS, UNSET, command_line_value, ini_value
from pytest_llenergy.plugin.registration import register_modules

MACHINERY = "pytest_llenergy.plugin.lifecycle"
"""The machinery's entry: it registers the hook modules and configures the session (``lifecycle.PARTS``)."""
SERVE_FLAG = "--lem-dispatch-serve"  # dispatch.worker.SERVE_FLAG (tests/test_plugin_import.py checks)
FIXTURES = frozenset({"energy", "lem_session", "lem_experiment", "lem_result"})
# The light part's own state, kept before (and whether or not) the session object exists:
ACTIVE = pytest.StashKey[str]()  # why the machinery was loaded
SERVE_STREAMS = pytest.StashKey[tuple[BinaryIO, BinaryIO]]()  # a persistent container's protocol streams


def active(config: pytest.Config) -> str | None:
    """Why the machinery is loaded in this run (None: it is not)."""
    return config.stash.get(ACTIVE, None)


def activate(config: pytest.Config, reason: str, session: pytest.Session | None = None,
             items: list[pytest.Item] | None = None) -> None:
    """Register the machinery (once: ``lifecycle`` registers its modules and configures the session);
    with ``session``, replay for them the session-start and collection hooks that ran before they loaded."""
    if active(config) is not None:
        return
    config.stash[ACTIVE] = reason
    manager = config.pluginmanager
    before = list(manager.get_plugins())
    register_modules(manager, [MACHINERY])  # not import_plugin: no rewrite warnings (plugin/__init__)
    if session is None:
        return
    manager.subset_hook_caller("pytest_sessionstart", remove_plugins=before)(session=session)
    if items is not None:
        manager.subset_hook_caller("pytest_collection_modifyitems", remove_plugins=before)(
            session=session, config=config, items=items)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> Any:
    """A persistent container's worker keeps stdin/stdout for the host before pytest captures them
    (before ``pytest_configure``: here, not in the dispatch module that loads later)."""
    if SERVE_FLAG in args and "--lem-dispatched" in args:
        from pytest_llenergy.dispatch.worker import take_protocol_streams

        early_config.stash[SERVE_STREAMS] = take_protocol_streams()
    return (yield)


def _configure_reason(config: pytest.Config) -> str | None:
    if hasattr(config, "workerinput") or getattr(config.option, "numprocesses", None):
        return "pytest-xdist"
    for opt in OPTIONS:
        if command_line_value(config, opt) is not UNSET:
            return f"{opt.flag} given"
        if ini_value(config, opt) is not UNSET:
            return f"ini {opt.dest} set"
    if config.hook.pytest_lem_default_campaign(config=config):
        return "a default campaign"
    return None


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Last, as the modules' own configure hooks ran when they were entry-point plugins: after
    pytest's (the cache, the terminal) and the options' ini check."""
    register_markers(config)
    reason = _configure_reason(config)
    if reason is not None:
        activate(config, reason)


def _uses_plugin(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & FIXTURES) or any(item.get_closest_marker(name) is not None for name in MARKERS)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """After collection: activate the machinery when a test uses its fixtures or markers."""
    if active(config) is None and any(_uses_plugin(item) for item in items):
        activate(config, "a test uses it", session, items)


__all__: list[Any] = ["MACHINERY", "activate", "active"]
