"""pytest-xdist integration, registered only when xdist is installed.

Controller side: hands every worker the run's seed and run id, so all workers order items
identically and write into one run directory.
"""

from __future__ import annotations

from typing import Any

import pytest

from .state import get_run


class ControllerHooks:
    """Hooks that run on the xdist controller."""

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        run = get_run(node.config)
        if run is None:
            return
        node.workerinput["lem_seed"] = run.seed
        node.workerinput["lem_seed_drawn"] = run.seed_drawn
        node.workerinput["lem_run_id"] = run.run_id
        node.workerinput["lem_results_root"] = str(run.results_root)
        node.workerinput["lem_done"] = sorted(run.done)


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(ControllerHooks(), "llenergy-xdist-controller")


def is_worker(config: pytest.Config) -> bool:
    """True on xdist workers and in dispatched (container) runs: they never write shared state."""
    return hasattr(config, "workerinput") or bool(config.getoption("lem_dispatched", False))
