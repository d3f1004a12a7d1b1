"""The uncertainty budget of a measured window: each part in joules, and their quadrature totals.

Parts (one standard deviation each, devices combined in quadrature):

- ``counter_quantisation``: what the counter's ~100 ms steps leave after the edge correction (the
  timing sd of the update instants used x power there); without a correction, mean power x
  period / sqrt(6) (one uniform step at each edge);
- ``series_counter``: the series supplies the partial periods at the edges; its disagreement with
  the counter (measured over the whole periods of this window, else 0.5 %) x those joules;
- ``short_window``: the series' own resolution at the instants where it is cut (window edges and
  the counter updates next to them): a quarter of the power change across the enclosing sample
  interval x that interval; and, for a window with fewer than two samples inside (shorter than
  the sampling interval), the range of the nearest samples x duration / sqrt(12). It dominates
  only short windows;
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
#: A window is ``host_bound`` when the mean GPU utilisation over it is below this (percent)...
HOST_BOUND_UTIL_PCT = 70.0
#: ...and at least this (a window below it did no device work: idle, or a ``time.sleep``).
DEVICE_WORK_UTIL_PCT = 5.0


@dataclass(frozen=True)
class Budget:
    """The parts (J) of one window and their totals."""

    parts: dict[str, float]
    uncertainty_j: float
    adjusted_uncertainty_j: float | None

    def uncertain(self, energy: float | None, adjusted: float | None) -> bool:
        return is_uncertain(self.uncertainty_j, energy, self.adjusted_uncertainty_j, adjusted)


def is_uncertain(uncertainty: float | None, energy: float | None, adjusted_uncertainty: float | None,
                 adjusted: float | None) -> bool:
    """Adjusted uncertainty above ``UNCERTAIN_FRACTION`` of the adjusted energy (raw figures when not adjusted)."""
    if adjusted_uncertainty is not None and adjusted is not None:
        return adjusted_uncertainty > UNCERTAIN_FRACTION * abs(adjusted)
    if uncertainty is not None and energy is not None:
        return uncertainty > UNCERTAIN_FRACTION * abs(energy)
    return False


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


def series_gap_j(t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> float:
    """What a window with fewer than two samples inside cannot know: the power between the samples
    that bracket it may sit anywhere in the range of the nearest samples (two either side), so the
    energy is uncertain by that range x duration / sqrt(12) (0 when two or more samples fall inside)."""
    if t.size == 0 or t1 <= t0 or np.count_nonzero((t > t0) & (t < t1)) >= 2:
        return 0.0
    lo = max(int(np.searchsorted(t, t0, side="right")) - 2, 0)
    hi = min(int(np.searchsorted(t, t1, side="left")) + 2, t.size)
    near = p[lo:hi]
    return float(np.ptp(near)) * (t1 - t0) / math.sqrt(12.0) if near.size else 0.0


def baseline_parts(duration_s: float, sd_of_mean_w: Mapping[str, float], drift_w: Mapping[str, float]) -> dict[str, float]:
    """Baseline sd and drift (W per device) as joules over a window of ``duration_s``."""
    return {"baseline_sd": quadrature(sd_of_mean_w.values()) * duration_s,
            "baseline_drift": quadrature(drift_w.values()) * duration_s}


def combine(raw_parts: list[dict[str, float]], base: dict[str, float] | None) -> Budget:
    """Per-device raw parts (summed in quadrature across devices) plus baseline parts (None: not adjusted)."""
    parts = {name: quadrature(d.get(name, 0.0) for d in raw_parts) for name in RAW_PARTS}
    raw = quadrature(parts.values())
    if base is None:
        return Budget(parts, raw, None)
    parts.update(base)
    return Budget(parts, raw, adjusted_total(raw, parts))


def adjusted_total(uncertainty_j: float, parts: Mapping[str, float]) -> float:
    """The adjusted uncertainty: the raw one and the baseline parts in quadrature."""
    return quadrature([uncertainty_j, *(parts.get(name, 0.0) for name in BASELINE_PARTS)])


def host_bound(mean_util_pct: float | None) -> bool | None:
    """True when the window did device work but kept the GPU busy less than ``HOST_BOUND_UTIL_PCT``
    of it; False for busy and for idle windows; None when utilisation is unknown."""
    if mean_util_pct is None or not math.isfinite(mean_util_pct):
        return None
    return DEVICE_WORK_UTIL_PCT <= mean_util_pct < HOST_BOUND_UTIL_PCT
