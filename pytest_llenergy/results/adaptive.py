"""Adaptive cycles: stop repeating an experiment once its CI is narrow enough.

Campaign YAML: ``cycles: {min: 3, max: 10, target_ci_halfwidth: 0.02, metric: energy_per_output_token}``.
After each cycle the caller passes the metric's values so far to ``decide``; the experiment is done
when it has at least ``min`` cycles and the relative half-width of the bootstrap CI of the mean,
``(high - low) / 2 / |mean|``, is at most the target (or when ``max`` cycles are reached).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pytest_llenergy.results.metrics import METRIC_ALIASES, metric_column
from pytest_llenergy.results.stats import bootstrap_ci


@dataclass(frozen=True)
class AdaptiveDecision:
    """Whether to stop, after how many usable values, the CI's relative half-width and why."""

    done: bool
    n: int
    halfwidth_rel: float | None
    reason: str


def _pct(value: float) -> str:
    return "inf %" if math.isinf(value) else f"{value * 100:.1f} %"


def decide(values: Sequence[float | None], min_cycles: int, target_rel_halfwidth: float, seed: int | None = None, *,
           max_cycles: int | None = None, confidence: float = 0.95, n_resamples: int = 10_000) -> AdaptiveDecision:
    """Stop (``done``) once n >= ``min_cycles`` and the relative CI half-width <= the target, or at ``max_cycles``.

    Missing (None/NaN) values do not count towards n, but do count towards ``max_cycles`` (cycles run).
    """
    if min_cycles < 1:
        raise ValueError(f"min_cycles must be at least 1, got {min_cycles}")
    if not target_rel_halfwidth > 0:
        raise ValueError(f"target_rel_halfwidth must be > 0, got {target_rel_halfwidth}")
    if max_cycles is not None and max_cycles < min_cycles:
        raise ValueError(f"max_cycles ({max_cycles}) is below min_cycles ({min_cycles})")
    run = len(values)
    x = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    missing = f" ({run - n} missing ignored)" if run > n else ""
    at_max = max_cycles is not None and run >= max_cycles
    target = _pct(target_rel_halfwidth)
    if n < max(min_cycles, 2):
        need = max(min_cycles, 2)
        reason = f"{n} usable value(s) < {need} needed{missing}"
        return AdaptiveDecision(at_max, n, None, f"max {max_cycles} cycles reached; {reason}" if at_max else reason)
    ci = bootstrap_ci(x, confidence=confidence, n_resamples=n_resamples, seed=seed)
    rel = ci.halfwidth_rel
    if math.isnan(rel):
        reason = f"no CI after {n} cycles{missing}"
    elif ci.mean == 0 and ci.halfwidth > 0:
        reason = f"mean is 0 after {n} cycles: a relative half-width cannot reach the target{missing}"
    elif rel <= target_rel_halfwidth:
        return AdaptiveDecision(True, n, rel, f"CI half-width {_pct(rel)} ≤ target {target} after {n} cycles{missing}")
    else:
        reason = f"CI half-width {_pct(rel)} > target {target} after {n} cycles{missing}"
    if at_max:
        reason = f"max {max_cycles} cycles reached; {reason}"
    return AdaptiveDecision(at_max, n, None if math.isnan(rel) else rel, reason)


__all__ = ["METRIC_ALIASES", "AdaptiveDecision", "decide", "metric_column"]
