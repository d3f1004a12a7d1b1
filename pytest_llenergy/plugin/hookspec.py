"""pytest-llenergy's own hooks (prefix ``pytest_lem_``), registered in ``pytest_addhooks``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_llenergy.config import Experiment
    from pytest_llenergy.results.schema import ExperimentResult


@pytest.hookspec()
def pytest_lem_modify_experiments(config: pytest.Config, experiments: list[Experiment]) -> None:
    """Modify the expanded experiment list in place before it becomes test items.

    Called once per process (controller and every xdist worker), so it must be deterministic:
    every process has to end with the same list, or xdist reports different collections.

    :param config: The pytest config object.
    :param experiments: The campaign's experiments, sorted by id. Remove, reorder or append.

    Use in conftest plugins
    =======================
    Any conftest file can implement this hook, e.g. to drop experiments that do not fit a GPU.
    """


@pytest.hookspec(firstresult=True)
def pytest_lem_default_campaign(config: pytest.Config) -> str | None:
    """The campaign to use when neither ``--lem-campaign`` nor the ini option names one.

    Lets a suite ship its own campaign (``pytest energy_suites/smoke`` uses this). Called once
    in ``pytest_configure``; only initial conftests (those of the paths on the command line) and
    plugins can answer. Stops at the first non-None result.

    :param config: The pytest config object.

    Use in conftest plugins
    =======================
    A conftest beside a suite returns the path of its campaign file.
    """


@pytest.hookspec()
def pytest_lem_result(config: pytest.Config, result: ExperimentResult) -> None:
    """Called after each campaign item's result has been written (on the process that ran it).

    :param config: The pytest config object.
    :param result: The stored result (read-only by convention).

    Use in conftest plugins
    =======================
    Any conftest file can implement this hook, e.g. to stream results to a tracker.
    """


@pytest.hookspec()
def pytest_lem_summary(config: pytest.Config, summary: Any) -> None:
    """Called once at session end on the controller, after statistics and outputs are written.

    :param config: The pytest config object.
    :param summary: The run's summary (per-experiment and per-group statistics).

    Use in conftest plugins
    =======================
    Any conftest file can implement this hook.
    """


@pytest.hookspec(firstresult=True)
def pytest_lem_dispatch(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Run a campaign item somewhere else (e.g. in a backend container) instead of in this process.

    Called from ``pytest_runtest_protocol`` for campaign items. Return ``None`` to run the item
    locally (the default), or ``True`` after running it and logging its reports (setup, call and
    teardown ``TestReport`` objects through ``item.ihook.pytest_runtest_logreport``), exactly as
    ``pytest_runtest_protocol`` would. Stops at the first non-None result.

    :param item: The campaign item.
    :param nextitem: The item that runs next, or None.

    Use in conftest plugins
    =======================
    Any conftest file can implement this hook, e.g. to send items to a remote runner.
    """


@pytest.hookspec(firstresult=True)
def pytest_lem_thermal_gap(item: pytest.Item, previous: pytest.Item | None) -> dict | None:
    """Wait before a campaign item so the GPU starts from a settled state; return what was waited.

    Called in ``pytest_runtest_setup`` for campaign items, before the item's fixtures. The
    default waits for the campaign's ``gaps`` setting (fixed seconds or adaptive) and returns a
    ``GapInfo``-shaped dict (``kind``, ``waited_s``, ``reason``, ``start_power_w``,
    ``start_temperature_c``); on NVML it may add ``idle_reading``, the idle re-check the gap took
    (a ``BaselineReading``; without one the item takes its own after the gap). Stops at the first
    non-None result.

    :param item: The campaign item about to run.
    :param previous: The campaign item that ran before it in this process, or None.

    Use in conftest plugins
    =======================
    Any conftest file can implement this hook, e.g. to skip gaps on a shared CI runner.
    """
