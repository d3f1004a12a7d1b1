"""How precisely a baseline's mean is known, and when an adaptive baseline may stop.

Idle power samples are autocorrelated (an H200's 50 Hz driver samples repeat a ~240 ms pattern
and wander by ~0.1 W over seconds), so ``sd / sqrt(n samples)`` overstates the precision of
their mean by ~7x. The standard error here comes from **block means** over ``BLOCK_S`` (1 s):
``sd(block means) / sqrt(blocks)``, and the 95 % half-width uses Student's t with blocks - 1
degrees of freedom, so a short reading (few blocks) is judged conservatively.

The stop rule (``BaselinePrecision``): the baseline's 95 % half-width must be at most
``ci_share x ci_target x adjusted_fraction x idle power``. A baseline error of dP watts shifts a
window's adjusted energy by dP x T, i.e. by dP / (P_window - P_idle) relative to it; for windows
whose adjusted power is at least ``adjusted_fraction`` of idle, the rule keeps that shift within
``ci_share`` of the campaign's target CI half-width ``ci_target`` (docs/methodology.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pytest_llenergy.config.measurement import BASELINE_CI_TARGET, BaselineSettings

#: Length of the blocks whose means give the baseline's standard error (seconds).
BLOCK_S = 1.0
CONFIDENCE = 0.95


def block_means(t_s: np.ndarray, power_w: np.ndarray, duration_s: float, block_s: float = BLOCK_S) -> np.ndarray:
    """Means of ``power_w`` over the whole blocks of ``block_s`` in [0, ``duration_s``] (``t_s`` from the
    window's start; a partial last block is dropped, so are blocks without samples)."""
    ok = np.isfinite(power_w) & (t_s >= 0)
    whole = int(np.floor(duration_s / block_s + 0.02))  # a window a few ms short of whole blocks keeps its last
    index = np.floor(t_s[ok] / block_s).astype(np.int64)
    keep = index < whole
    if whole < 1 or not keep.any():
        return np.empty(0)
    sums = np.bincount(index[keep], weights=power_w[ok][keep], minlength=whole)
    counts = np.bincount(index[keep], minlength=whole)
    return np.asarray(sums[counts > 0] / counts[counts > 0])


def standard_error(blocks: np.ndarray) -> float | None:
    """sd(block means) / sqrt(blocks); None below two blocks."""
    if blocks.size < 2:
        return None
    return float(np.std(blocks, ddof=1) / math.sqrt(blocks.size))


def t_quantile(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + CONFIDENCE / 2, dof))


def halfwidth_w(blocks: np.ndarray) -> float:
    """95 % half-width of the mean of ``blocks`` (t, blocks - 1 dof); inf below two blocks."""
    se = standard_error(blocks)
    return math.inf if se is None else t_quantile(blocks.size - 1) * se


@dataclass(frozen=True)
class BaselinePrecision:
    """The adaptive baseline's floor, cap and stop rule (built from the campaign's settings)."""

    floor_s: float
    cap_s: float
    ci_target: float
    ci_share: float
    adjusted_fraction: float

    @classmethod
    def from_settings(cls, settings: BaselineSettings, campaign_ci_target: float | None = None) -> BaselinePrecision:
        """``settings.ci_target``, else the campaign's (adaptive cycles' target), else ``BASELINE_CI_TARGET``."""
        target = settings.ci_target or campaign_ci_target or BASELINE_CI_TARGET
        return cls(settings.floor_s, settings.duration_s, target, settings.ci_share, settings.adjusted_fraction)

    def allowed_w(self, idle_w: float) -> float:
        """The largest 95 % half-width of the baseline's mean (W) for idle power ``idle_w``."""
        return self.ci_share * self.ci_target * self.adjusted_fraction * abs(idle_w)

    def relative_shift(self, halfwidth: float, idle_w: float) -> float:
        """The baseline's 95 % half-width as a share of the adjusted power of the smallest windows sized for."""
        return halfwidth / (self.adjusted_fraction * abs(idle_w)) if idle_w else math.inf

    def seconds_more(self, blocks: np.ndarray, idle_w: float, elapsed_s: float) -> float:
        """Seconds still to measure (0: precise enough, or the cap reached), at least one block when > 0."""
        left = self.cap_s - elapsed_s
        if left < BLOCK_S / 2:
            return 0.0
        allowed = self.allowed_w(idle_w)
        if halfwidth_w(blocks) <= allowed:
            return 0.0
        se = standard_error(blocks)
        if se is None:
            return min(left, max(BLOCK_S, 2 * BLOCK_S - blocks.size * BLOCK_S))
        sd = se * math.sqrt(blocks.size)
        n = blocks.size + 1
        while n * BLOCK_S < self.cap_s and t_quantile(n - 1) * sd / math.sqrt(n) > allowed:
            n += 1
        return min(left, max(BLOCK_S, (n - blocks.size) * BLOCK_S))
