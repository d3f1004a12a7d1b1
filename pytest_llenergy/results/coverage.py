"""Which interval at which n, how often it covers, and how many cycles a spread needs.

Below ``T_BELOW`` passed cycles the interval of a mean is Student's t (``mean +- t_(n-1) sd / sqrt(n)``):
at n = 3 a bootstrap interval is about [min, max] and covers ~75 %, while t covers ~94 % of normal and
~92 % of skewed (lognormal) cycle values. From ``T_BELOW`` cycles on, the small-sample expanded BCa
bootstrap covers as well as t and better on skewed data. The simulated coverage of each method at
each n (normal and lognormal data, 10,000 campaigns per cell) ships as ``coverage_table.json``,
written by ``scripts/gen_coverage_table.py``; ``docs/statistics.md`` shows the table.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import stdtrit

METHOD_T = "t"
T_BELOW = 10  # Student-t for 2 <= n < T_BELOW, BCa from T_BELOW cycles on
TABLE_PATH = Path(__file__).with_name("coverage_table.json")
TABLE_CONFIDENCE = 0.95
SKEWED = "lognormal(0, 0.5)"


def use_t(n: int | np.ndarray) -> bool | np.ndarray:
    """Whether a sample of ``n`` values gets Student's t rather than the bootstrap."""
    return (np.asarray(n) >= 2) & (np.asarray(n) < T_BELOW) if isinstance(n, np.ndarray) else 2 <= n < T_BELOW


def t_quantile(n: int | np.ndarray, confidence: float) -> np.ndarray:
    """``t_(n-1)((1 + confidence) / 2)`` (NaN for n < 2)."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(n >= 2, stdtrit(np.maximum(n - 1, 1), (1 + confidence) / 2), np.nan)


def t_bounds(mean: ArrayLike, sd: ArrayLike, n: ArrayLike, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval of the mean, elementwise."""
    count = np.asarray(n, dtype=np.float64)
    half = t_quantile(count, confidence) * np.asarray(sd) / np.sqrt(np.maximum(count, 1))
    return np.asarray(mean) - half, np.asarray(mean) + half


def cycles_needed(rel_sd: float, target: float, confidence: float = 0.95, limit: int = 10_000) -> int | None:
    """Fewest cycles whose t interval half-width, at this relative sd, is at most ``target`` (relative).

    None when the spread is unknown (NaN) or more than ``limit`` cycles would be needed.
    """
    if not math.isfinite(rel_sd) or rel_sd < 0 or target <= 0:
        return None
    if rel_sd == 0:
        return 2

    def enough(n: int) -> bool:  # the half-width falls with n (t's quantile and 1/sqrt(n) both do)
        return float(t_quantile(n, confidence)) * rel_sd / math.sqrt(n) <= target

    if not enough(limit):
        return None
    low, high = 1, limit  # enough(high), not enough(low)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


@functools.cache
def _table() -> dict[str, Any]:
    return json.loads(TABLE_PATH.read_text())


def coverage(method: str, n: int, confidence: float) -> tuple[float, float]:
    """Simulated coverage (normal data, skewed data) of ``method``'s interval at ``n`` cycles.

    NaN where not simulated (another confidence level, a point or no interval). Beyond the
    table's largest n the last row stands (coverage only improves with n).
    """
    table = _table()
    if abs(confidence - table["confidence"]) > 1e-9 or n < 2:
        return math.nan, math.nan
    rows = table["coverage"].get(method)
    if rows is None:
        return math.nan, math.nan
    key = str(min(n, table["max_n"]))
    normal, skewed = rows.get(key, (math.nan, math.nan))
    return float(normal), float(skewed)


def coverage_arrays(method: np.ndarray, n: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """``coverage`` elementwise over arrays of methods and sizes."""
    normal = np.full(np.shape(n), np.nan)
    skewed = np.full(np.shape(n), np.nan)
    for index in np.ndindex(np.shape(n)):
        normal[index], skewed[index] = coverage(str(method[index]), int(n[index]), confidence)
    return normal, skewed


def coverage_text(normal: float, skewed: float) -> str:
    """``92-95%``: the simulated coverage range (skewed to normal data), ``-`` when unknown."""
    if not (math.isfinite(normal) and math.isfinite(skewed)):
        return "-"
    low, high = sorted((normal, skewed))
    return f"{low:.0%}" if round(low * 100) == round(high * 100) else f"{low * 100:.0f}-{high:.0%}"
