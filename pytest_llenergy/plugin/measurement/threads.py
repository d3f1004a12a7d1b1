"""CPU threads for inference, set once per process before any test loads torch.

One thread per available core, shared among xdist workers, unless the user set
``OMP_NUM_THREADS``; the choice and the load average go into the environment record, the
campaign header says it, and a loaded machine (load average > cores) gets a warning.
"""

from __future__ import annotations

import os

import pytest

from pytest_llenergy.energy.threads import ThreadPlan, apply_threads, load_warning, plan_threads
from pytest_llenergy.plugin.state import get_run

THREADS = pytest.StashKey[ThreadPlan]()
OURS = "LLENERGY_THREADS"  # marks thread variables this plugin set (inherited by xdist workers)


def _workers(config: pytest.Config) -> int:
    """How many xdist workers share this machine's cores (1 outside xdist), from this process's own
    ``workerinput`` rather than the environment, which a nested pytest would inherit."""
    workerinput = getattr(config, "workerinput", None)
    count = workerinput.get("workercount") if isinstance(workerinput, dict) else None
    return int(count) if isinstance(count, int) and count > 0 else 1


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    environ = os.environ
    if environ.get(OURS) and environ.get("OMP_NUM_THREADS") == environ.get(OURS):
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            if environ.get(name) == environ[OURS]:
                del environ[name]  # set by our controller for itself: recompute for this worker
    plan = plan_threads(workers=_workers(config))
    apply_threads(plan)
    if plan.chosen_by != "user (OMP_NUM_THREADS)":
        environ[OURS] = str(plan.threads)
    config.stash[THREADS] = plan


def thread_lines(config: pytest.Config) -> list[str]:
    """``threads: ...`` and, on a loaded machine, a warning."""
    plan = config.stash.get(THREADS, None)
    lines = [f"threads: {plan.describe()}"] if plan is not None else []
    warning = load_warning(plan.cores if plan is not None else None)
    return lines + ([f"WARNING: {warning}"] if warning else [])


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if get_run(config) is None:
        return None
    return [f"llenergy: {line}" for line in thread_lines(config)]
