"""pytest-llenergy's own hooks (prefix ``pytest_lem_``), registered in ``pytest_addhooks``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..config import Experiment
    from ..results.schema import ExperimentResult


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
