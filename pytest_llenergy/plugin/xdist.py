"""pytest-xdist integration: one worker per GPU, pinned before CUDA starts.

Controller (registered only when xdist is installed): ``-n auto`` starts one worker per visible
GPU (``CUDA_VISIBLE_DEVICES`` respected, ``--lem-gpus-per-worker K`` groups them) and hands every
worker its GPUs, the run's seed, run id and resume set through ``workerinput``.
Worker: sets ``CUDA_VISIBLE_DEVICES`` to its GPUs in ``pytest_configure`` (tryfirst), before any
test can initialise CUDA, so each worker measures only its own GPUs.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from pytest_llenergy.plugin.options import resolve

# Light: registered with every run (``-n auto`` asks for the worker count before any configure hook).


def is_worker(config: pytest.Config) -> bool:
    """True on xdist workers and in dispatched (container) runs: they never write shared state."""
    return hasattr(config, "workerinput") or bool(config.getoption("lem_dispatched", False))


def visible_gpus() -> list[str]:
    """GPU ids this process may use, without initialising CUDA: CUDA_VISIBLE_DEVICES, else NVML."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [part.strip() for part in env.split(",") if part.strip() and part.strip() != "-1"]
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return [str(i) for i in range(pynvml.nvmlDeviceGetCount())]
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return []


def gpus_per_worker(config: pytest.Config) -> int:
    """GPUs per xdist worker (validated by the option's parser)."""
    return int(resolve(config, "lem_gpus_per_worker"))


def worker_gpus(gpus: list[str], per_worker: int, index: int) -> list[str]:
    """The GPUs of worker ``index``: consecutive groups of ``per_worker``."""
    return gpus[index * per_worker:(index + 1) * per_worker]


class ControllerHooks:
    """Hooks that run on the xdist controller."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        from pytest_llenergy.plugin.base import get_run

        run = get_run(node.config)
        index = int(str(node.gateway.id).removeprefix("gw") or 0)
        gpus = visible_gpus()
        if gpus:
            mine = worker_gpus(gpus, gpus_per_worker(node.config), index)
            if not mine:
                raise pytest.UsageError(
                    f"llenergy: worker gw{index} has no GPU: {len(gpus)} visible, "
                    f"{gpus_per_worker(node.config)} per worker; use fewer workers (-n auto)")
            node.workerinput["lem_gpus"] = ",".join(mine)
        if run is None:
            return
        node.workerinput["lem_seed"] = run.seed
        node.workerinput["lem_seed_drawn"] = run.seed_drawn
        node.workerinput["lem_run_id"] = run.run_id
        node.workerinput["lem_results_root"] = str(run.results_root)
        node.workerinput["lem_done"] = sorted(run.done)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per visible GPU (xdist asks before ``pytest_configure``)."""
    gpus = visible_gpus()
    if not gpus:
        return None  # no GPU: xdist's own default (CPU count)
    return max(1, len(gpus) // gpus_per_worker(config))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Configure (every run, first): an xdist worker pins its GPUs before CUDA starts; the controller
    registers the hooks that hand each worker its GPUs and the run's identity."""
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None and worker_input.get("lem_gpus"):
        os.environ["CUDA_VISIBLE_DEVICES"] = worker_input["lem_gpus"]
    if config.pluginmanager.hasplugin("xdist") and worker_input is None:
        config.pluginmanager.register(ControllerHooks(config), "llenergy-xdist-controller")
