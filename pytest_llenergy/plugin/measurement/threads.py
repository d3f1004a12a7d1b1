"""CPU threads for inference, set once per process before any test loads torch.

One thread per available core, shared among xdist workers, unless the user set
``OMP_NUM_THREADS``; the choice and the load average go into the environment record, the
campaign header says it, and a loaded machine (load average > cores) gets a warning.
"""

from __future__ import annotations

import os

import pytest

from pytest_llenergy.energy.threads import apply_threads, plan_threads
from pytest_llenergy.plugin.base import get_run, session_of
from pytest_llenergy.plugin.session import LemSession

OURS = "LLENERGY_THREADS"  # marks thread variables this plugin set (inherited by xdist workers)


def _workers(config: pytest.Config) -> int:
    """How many xdist workers share this machine's cores (1 outside xdist), from this process's own
    ``workerinput`` rather than the environment, which a nested pytest would inherit."""
    workerinput = getattr(config, "workerinput", None)
    count = workerinput.get("workercount") if isinstance(workerinput, dict) else None
    return int(count) if isinstance(count, int) and count > 0 else 1


def choose(session: LemSession) -> None:
    """Configure step: the process's CPU threads (``session.threads``), set before any test loads torch."""
    environ = os.environ
    if environ.get(OURS) and environ.get("OMP_NUM_THREADS") == environ.get(OURS):
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            if environ.get(name) == environ[OURS]:
                del environ[name]  # set by our controller for itself: recompute for this worker
    plan = plan_threads(workers=_workers(session.config))
    apply_threads(plan)
    if plan.chosen_by != "user (OMP_NUM_THREADS)":
        environ[OURS] = str(plan.threads)
    session.threads = plan


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """Header: the CPU threads chosen (campaign runs)."""
    if get_run(config) is None:
        return None
    return [f"llenergy: {line}" for line in session_of(config).thread_lines()]
