"""Container dispatch, the pytest side: options, plugin registration, and ``pytest_lem_dispatch``.

The host (controller or xdist worker) keeps ordering, thermal gaps and baselines; for an item
routed to docker it runs ``pytest <node id>`` in the backend's compose service with the same
campaign, run id, seed, cycles and results directory, then logs setup/call/teardown reports
built from what the container reported (``--lem-dispatch-report``), with the same ``lem_key`` /
``lem_result`` user properties as a local item, ``lem_result`` read from the result file the
container wrote into the host's run directory.

The parts: :mod:`.dispatch_settings` (mode, strategy, `DispatchSettings`), :mod:`.dispatch_host`
(`DockerDispatch`: routing, preflight, running items) and :mod:`.dispatch_reports` (the reports'
round trip, `ContainerSide` inside the container). Only this module defines module-level hooks;
the ``name as name`` imports keep the names it had before the split importable from here.
"""

from __future__ import annotations

import json

import pytest

from pytest_llenergy.plugin.activation import SERVE_STREAMS
from pytest_llenergy.plugin.base import campaign_item
from pytest_llenergy.plugin.dispatch.host import DockerDispatch
from pytest_llenergy.plugin.dispatch.host import Route as Route
from pytest_llenergy.plugin.dispatch.reports import REPORT_SCHEMA as REPORT_SCHEMA
from pytest_llenergy.plugin.dispatch.reports import ContainerSide
from pytest_llenergy.plugin.dispatch.serve import ServeLoop
from pytest_llenergy.plugin.dispatch.settings import build_settings as build_settings
from pytest_llenergy.plugin.dispatch.settings import campaign_path as campaign_path
from pytest_llenergy.plugin.dispatch.settings import container_strategy, dispatch_mode
from pytest_llenergy.plugin.dispatch.settings import keep_containers as keep_containers
from pytest_llenergy.plugin.session import LemSession

DISPATCH_PLUGIN = "llenergy-dispatch"


# -- hooks -------------------------------------------------------------------------------------------------------
def register(session: LemSession) -> None:
    """Configure step: inside a container, the container side (and its serve loop); on the host, the
    docker dispatch when the run's mode is not local."""
    config = session.config
    if config.getoption("lem_dispatched", False):
        path = config.getoption("lem_dispatch_report", None)
        raw_gap = config.getoption("lem_dispatch_gap", None)  # JSON, checked by the option's parser
        gap = json.loads(raw_gap) if raw_gap else None
        streams = session.serve_streams = config.stash.get(SERVE_STREAMS, None)
        if streams is not None:
            side = ContainerSide(config, None, None, serving=True)
            config.pluginmanager.register(side, "llenergy-dispatch-container")
            config.pluginmanager.register(ServeLoop(side, streams), "llenergy-dispatch-serve")
        elif path or gap is not None:
            config.pluginmanager.register(ContainerSide(config, path, gap), "llenergy-dispatch-container")
        return
    run = session.run
    if run is None:
        return
    mode = dispatch_mode(config, run)
    container_strategy(config, run)
    if mode != "local":
        config.pluginmanager.register(DockerDispatch(config, run, mode), DISPATCH_PLUGIN)


@pytest.hookimpl(trylast=True)
def pytest_lem_dispatch(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """The default: run the item here (None); ``DockerDispatch`` answers first for items it routes."""
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Item protocol: hand a campaign item to ``pytest_lem_dispatch`` (docker dispatch runs the items it routes)."""
    if campaign_item(item) is None or item.config.getoption("lem_dispatched", False):
        return None
    if item.ihook.pytest_lem_dispatch(item=item, nextitem=nextitem):
        return True
    return None
