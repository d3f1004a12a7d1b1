"""Warmup: run the workload until its latency stops moving.

``convergence``: run until the coefficient of variation (sd / mean, ddof=1) of the last
``window`` latencies falls below ``cv_threshold``, after at least ``min_iterations`` and at
most ``max_iterations`` runs, and never past ``max_time_s`` of wall time (the run in progress
finishes; the outcome says ``budget_exhausted``). ``fixed``: exactly ``iterations`` runs (also
bounded by ``max_time_s``). ``off``: nothing. :func:`rewarm` is the short fixed re-warm of a
model and workload shape that already converged in this process; :func:`warm_shapes` runs each of
a workload's batch shapes once at full length after the probes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_llenergy.config.base import default_of
from pytest_llenergy.config.measurement import WARMUP_MODES, WarmupSettings

MODES = WARMUP_MODES
#: what ended a warmup
OUTCOMES = ("converged", "not_converged", "budget_exhausted", "fixed", "rewarm", "off")


@dataclass(frozen=True)
class WarmupResult:
    """What the warmup did; :meth:`to_dict` matches ``WarmupOutcome``."""

    mode: str
    converged: bool | None
    iterations: int
    final_cv: float | None = None
    cv_threshold: float | None = None
    latencies_s: list[float] = field(default_factory=list)
    outcome: str = "off"
    duration_s: float = 0.0
    probe: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "converged": self.converged, "iterations": self.iterations,
                "final_cv": self.final_cv, "cv_threshold": self.cv_threshold,
                "latencies_s": list(self.latencies_s), "outcome": self.outcome,
                "duration_s": self.duration_s, "probe": self.probe}


def cv(values: list[float]) -> float:
    """Coefficient of variation, sd (ddof=1) / mean; inf when the mean is 0."""
    a = np.asarray(values, dtype=float)
    mean = float(a.mean())
    return float(a.std(ddof=1)) / mean if mean else float("inf")


def run_warmup(
    fn: Callable[[], Any],
    mode: str = default_of(WarmupSettings, "mode"),
    cv_threshold: float = default_of(WarmupSettings, "cv_threshold"),
    window: int = default_of(WarmupSettings, "window"),
    min_iterations: int = default_of(WarmupSettings, "min_iterations"),
    max_iterations: int = default_of(WarmupSettings, "max_iterations"),
    iterations: int = default_of(WarmupSettings, "iterations"),
    clock: Callable[[], float] = time.perf_counter,
    max_time_s: float | None = None,
) -> WarmupResult:
    """Run ``fn`` as warmup according to ``mode`` and report the latencies."""
    if mode not in MODES:
        raise ValueError(f"warmup mode must be one of {MODES}, got {mode!r}")
    if mode == "off":
        return WarmupResult("off", None, 0)
    if mode == "fixed":
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        return _fixed(fn, iterations, window, clock, max_time_s, "fixed")
    if window < 2 or min_iterations < 1 or max_iterations < max(min_iterations, window):
        raise ValueError("need window >= 2, min_iterations >= 1 and "
                         "max_iterations >= max(min_iterations, window)")
    started = clock()
    lat: list[float] = []
    final: float | None = None
    while len(lat) < max_iterations:
        lat.append(_timed(fn, clock))
        if len(lat) >= window:
            final = cv(lat[-window:])
            if len(lat) >= min_iterations and final < cv_threshold:
                return WarmupResult("convergence", True, len(lat), final, cv_threshold, lat,
                                    "converged", clock() - started)
        if max_time_s is not None and clock() - started >= max_time_s:
            return WarmupResult("convergence", False, len(lat), final, cv_threshold, lat,
                                "budget_exhausted", clock() - started)
    return WarmupResult("convergence", False, len(lat), final, cv_threshold, lat, "not_converged", clock() - started)


def rewarm(fn: Callable[[], Any], iterations: int, clock: Callable[[], float] = time.perf_counter,
           max_time_s: float | None = None) -> WarmupResult:
    """``iterations`` runs of ``fn`` after a gap, for a model and shape that already warmed up."""
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    return _fixed(fn, iterations, 5, clock, max_time_s, "rewarm")


def warm_shapes(runs: Sequence[Callable[[], Any]], spent_s: float, max_time_s: float | None,
                clock: Callable[[], float] = time.perf_counter) -> tuple[int, float]:
    """Run each of ``runs`` (one full-length batch per batch shape) once, in order: the first always,
    a later one only while the warmup's ``spent_s`` plus this step stays under ``max_time_s``.
    Returns (how many ran, seconds taken)."""
    started = clock()
    ran = 0
    for run in runs:
        if ran and max_time_s is not None and spent_s + clock() - started >= max_time_s:
            break
        run()
        ran += 1
    return ran, clock() - started


def _fixed(fn: Callable[[], Any], iterations: int, window: int, clock: Callable[[], float],
           max_time_s: float | None, outcome: str) -> WarmupResult:
    started = clock()
    lat: list[float] = []
    while len(lat) < iterations:
        lat.append(_timed(fn, clock))
        if max_time_s is not None and clock() - started >= max_time_s and len(lat) < iterations:
            outcome = "budget_exhausted"
            break
    final = cv(lat[-window:]) if len(lat) >= max(window, 2) else None
    mode = "fixed"
    return WarmupResult(mode, None, len(lat), final, None, lat, outcome, clock() - started)


def _timed(fn: Callable[[], Any], clock: Callable[[], float]) -> float:
    t0 = clock()
    fn()
    return clock() - t0
