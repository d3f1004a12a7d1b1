"""The uncertainty budget of a measured window: each part in joules, and their quadrature totals.

Parts (one standard deviation each, devices combined in quadrature):

- ``counter_quantisation``: what the counter's ~100 ms steps leave after the edge correction (the
  timing sd of the update instants used x power there); without a correction, mean power x
  period / sqrt(6) (one uniform step at each edge);
- ``series_counter``: the series supplies the partial periods at the edges; its disagreement with
  the counter (measured over the whole periods of this window, else 0.5 %) x those joules;
- ``short_window``: the series' own resolution at the instants where it is cut (window edges and
  the counter updates next to them): a quarter of the power change across the enclosing sample
  interval x that interval. It dominates only short windows with sharp edges;
- ``baseline_sd``: the sd of the subtracted idle power's mean (sd / sqrt(n)) x the window duration;
- ``baseline_drift``: how far idle power moved between the re-checks that bracket the item (W) x
  the window duration.

``uncertainty_j`` combines the first three (raw energy); ``adjusted_uncertainty_j`` adds the two
baseline parts (baseline-adjusted energy). A window whose adjusted uncertainty exceeds
``UNCERTAIN_FRACTION`` of its adjusted energy is flagged ``uncertain``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

RAW_PARTS = ("counter_quantisation", "series_counter", "short_window")
BASELINE_PARTS = ("baseline_sd", "baseline_drift")
PARTS = RAW_PARTS + BASELINE_PARTS
#: A result is ``uncertain`` when its (adjusted) uncertainty exceeds this fraction of its (adjusted) energy.
UNCERTAIN_FRACTION = 0.05
#: A window is ``host_bound`` when the mean GPU utilisation over it is below this (percent).
HOST_BOUND_UTIL_PCT = 70.0


@dataclass(frozen=True)
class Budget:
    """The parts (J) of one window and their totals."""

    parts: dict[str, float]
    uncertainty_j: float
    adjusted_uncertainty_j: float | None

    def relative(self, energy: float | None, adjusted: float | None) -> float | None:
        """Adjusted uncertainty / adjusted energy (raw ones when not adjusted); None without energy."""
        if adjusted is not None and self.adjusted_uncertainty_j is not None:
            return self.adjusted_uncertainty_j / abs(adjusted) if adjusted else math.inf
        if energy is None:
            return None
        return self.uncertainty_j / abs(energy) if energy else math.inf


def quadrature(values: Iterable[float]) -> float:
    return math.sqrt(sum(v * v for v in values))


def series_resolution_j(t: np.ndarray, p: np.ndarray, instants: Iterable[float]) -> float:
    """Quadrature over ``instants`` of |power change across the enclosing sample interval| x interval / 4."""
    if t.size < 2:
        return 0.0
    out = []
    for x in instants:
        i = int(np.clip(np.searchsorted(t, x, side="right") - 1, 0, t.size - 2))
        if t[i] <= x <= t[i + 1]:
            out.append(abs(float(p[i + 1] - p[i])) * float(t[i + 1] - t[i]) / 4.0)
    return quadrature(out)


def baseline_parts(duration_s: float, sd_of_mean_w: Mapping[str, float], drift_w: Mapping[str, float]) -> dict[str, float]:
    """Baseline sd and drift (W per device) as joules over a window of ``duration_s``."""
    return {"baseline_sd": quadrature(sd_of_mean_w.values()) * duration_s,
            "baseline_drift": quadrature(drift_w.values()) * duration_s}


def combine(raw_parts: list[dict[str, float]], base: dict[str, float] | None) -> Budget:
    """Per-device raw parts (summed in quadrature across devices) plus baseline parts (None: not adjusted)."""
    parts = {name: quadrature(d.get(name, 0.0) for d in raw_parts) for name in RAW_PARTS}
    raw = quadrature(parts.values())
    adjusted = None
    if base is not None:
        parts.update(base)
        adjusted = quadrature([raw, *base.values()])
    return Budget(parts, raw, adjusted)


def host_bound(mean_util_pct: float | None) -> bool | None:
    """True when the GPU was busy less than ``HOST_BOUND_UTIL_PCT`` of the window; None when unknown."""
    if mean_util_pct is None or not math.isfinite(mean_util_pct):
        return None
    return mean_util_pct < HOST_BOUND_UTIL_PCT
