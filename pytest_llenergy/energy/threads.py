"""CPU threads for inference: one per available core, shared among parallel workers.

PyTorch (OpenMP/MKL) starts one thread per core it sees, and idle OpenMP threads spin. On a
shared or loaded machine that oversubscribes the cores, slows inference many-fold and inflates
the CPU-time energy estimate, which counts every spinning thread. ``plan_threads`` picks one
thread per core this process may run on (``os.sched_getaffinity``) divided among xdist workers,
unless the user chose a count (``OMP_NUM_THREADS``); ``apply_threads`` sets it before torch loads
(and on torch if it is already loaded).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (CPU affinity / cpuset), not the machine's total."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadPlan:
    """The thread count inference uses and why."""

    threads: int
    cores: int
    workers: int
    chosen_by: str  # "user (OMP_NUM_THREADS)" or "pytest-llenergy"

    def describe(self) -> str:
        share = f" / {self.workers} workers" if self.workers > 1 else ""
        return f"{self.threads} CPU thread(s) for inference ({self.cores} available cores{share}; set by {self.chosen_by})"


def plan_threads(environ: Mapping[str, str] | None = None, cores: int | None = None, workers: int = 1) -> ThreadPlan:
    """One thread per available core shared among ``workers``, unless OMP_NUM_THREADS is set."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    cores = available_cores() if cores is None else cores
    workers = max(1, workers)
    user = (env.get("OMP_NUM_THREADS") or "").strip()
    if user.isdigit() and int(user) > 0:
        return ThreadPlan(int(user), cores, workers, "user (OMP_NUM_THREADS)")
    return ThreadPlan(max(1, cores // workers), cores, workers, "pytest-llenergy")


def apply_threads(plan: ThreadPlan, environ: Any = None) -> None:
    """Set the thread variables (children and a later torch import read them) and torch's own count."""
    environ = os.environ if environ is None else environ
    for name in THREAD_VARIABLES:
        environ.setdefault(name, str(plan.threads))
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        try:
            torch.set_num_threads(plan.threads)
        except RuntimeError:
            pass


def load_warning(cores: int | None = None) -> str | None:
    """A warning when the 1-minute load average exceeds the available cores, else None."""
    cores = available_cores() if cores is None else cores
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    if load <= cores:
        return None
    return (f"machine is loaded: 1-minute load average {load:.1f} > {cores} available core(s); other processes "
            "share the CPU, so timings and CPU energy estimates are inflated and noisy")


def thread_environment() -> dict[str, Any]:
    """Thread settings for the environment record."""
    torch = sys.modules.get("torch")
    out: dict[str, Any] = {"available_cores": available_cores(),
                           "variables": {n: os.environ.get(n) for n in THREAD_VARIABLES}}
    if torch is not None and hasattr(torch, "get_num_threads"):
        out["torch_threads"] = torch.get_num_threads()
    try:
        out["load_average_1m"] = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        pass
    return out


def plan_dict(plan: ThreadPlan) -> dict[str, Any]:
    return asdict(plan)
