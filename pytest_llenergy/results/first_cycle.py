"""Is the first cycle like the others? A check of the warm state the cycle-to-cycle interval assumes.

The interval of a mean over cycles treats the cycles as exchangeable. The first measured cycle is the
one a warm state most often breaks: one-time costs (a batch shape's first run, allocator growth, a
compile) left for the window instead of the warmup. On an H200 before the warmup ran a full-length
batch, first windows of eager decoding took 1.5-4x the later ones and nothing said so.

Per experiment with at least ``MIN_CYCLES`` passed cycles, the earliest passed cycle's value is held
against the ``CONFIDENCE`` prediction interval of one more draw from the later cycles (Student's t:
``mean +- t(m - 1) sd sqrt(1 + 1/m)``, m later cycles; exact for normal cycle values, so about 1 % of
experiments whose cycles are exchangeable are flagged per metric). Checked: the main metric, output
tokens per second and raw J per output token. The first two can disagree: those H200 first windows
ran 1.5-4x longer while adjusted J per output token moved 2-6 % (the extra time was host work with
the GPU near idle, which the baseline removes), so a throughput figure carried the cold cycle that
the energy figure hid. ``first_cycle_ratio`` is the main metric's first value over its later mean;
``first_cycle_outlier`` says whether any checked metric's first value lies outside its interval, and
``first_cycle_note`` names those (``output tok/s 0.41x``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from pytest_llenergy.results.metrics import METRIC_LABELS

MIN_CYCLES = 4
CONFIDENCE = 0.99
METRIC_WORDS = {column: label for column, (label, _unit) in METRIC_LABELS.items()}


def _verdicts(first: np.ndarray, m: np.ndarray, mean: np.ndarray, sd: np.ndarray,
              confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Per entry: first / mean and whether ``first`` is outside the prediction interval (NaN ratio where
    there are under ``MIN_CYCLES - 1`` later values, no first value or a zero mean)."""
    ok = (m >= MIN_CYCLES - 1) & np.isfinite(first) & np.isfinite(mean) & (mean != 0)
    dof = np.where(ok, m - 1, 1)
    half = student_t.ppf(0.5 + confidence / 2, dof) * sd * np.sqrt(1 + 1 / np.where(ok, m, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ok, first / mean, np.nan)
    return ratio, ok & (np.abs(first - mean) > half)


def first_cycle_check(first: float, later: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, bool] | None:
    """(first / mean of later, outside the prediction interval); None with under MIN_CYCLES - 1 finite
    later values, a non-finite first value or a zero mean."""
    later = later[np.isfinite(later)]
    if later.size < MIN_CYCLES - 1:
        return None
    ratio, out = _verdicts(np.array([first]), np.array([later.size]), np.array([later.mean()]),
                           np.array([later.std(ddof=1)]), confidence)
    return None if np.isnan(ratio[0]) else (float(ratio[0]), bool(out[0]))


#: metrics checked beside the main one, with the words the note uses
ALSO_CHECKED = {"output_tokens_per_s": "output tok/s", "energy_per_output_token_j": "raw J/output token"}


def _check_column(passed: pd.DataFrame, position: np.ndarray, column: str,
                  experiments: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Ratio and verdict per experiment (in ``experiments`` order) for one metric column."""
    values = pd.to_numeric(passed[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ids = passed["experiment_id"].to_numpy()
    later = pd.DataFrame({"id": ids[position > 0], "v": values[position > 0]}).dropna()
    stats = later.groupby("id")["v"].agg(["count", "mean", "std"]).reindex(experiments)
    first = pd.Series(values[position == 0], index=ids[position == 0]).reindex(experiments)
    return _verdicts(first.to_numpy(dtype=np.float64, na_value=np.nan), stats["count"].fillna(0).to_numpy(),
                     stats["mean"].to_numpy(dtype=np.float64), stats["std"].fillna(0.0).to_numpy(dtype=np.float64),
                     CONFIDENCE)


def mark_first_cycles(df: pd.DataFrame, table: pd.DataFrame, metric: str | None) -> pd.DataFrame:
    """``table`` plus ``first_cycle_ratio``, ``first_cycle_outlier`` and ``first_cycle_note`` per experiment
    (NaN / False / None where it has too few passed cycles)."""
    n = len(table)
    ratio, outlier, note = np.full(n, np.nan), np.zeros(n, dtype=bool), np.full(n, None, dtype=object)
    if metric is None or "cycle" not in df or not n:
        return table.assign(first_cycle_ratio=ratio, first_cycle_outlier=outlier, first_cycle_note=note)
    passed = df[df["status"] == "passed"] if "status" in df else df
    passed = passed.sort_values(["experiment_id", "cycle"], kind="stable")
    position = passed.groupby("experiment_id").cumcount().to_numpy()
    experiments = pd.Index(table["experiment_id"])
    words = {metric: METRIC_WORDS.get(metric, metric), **{k: v for k, v in ALSO_CHECKED.items() if k != metric}}
    flagged: list[list[str]] = [[] for _ in range(n)]
    for column, word in words.items():
        if column not in passed:
            continue
        ratios, outside = _check_column(passed, position, column, experiments)
        if column == metric:
            ratio = ratios
        for i in np.flatnonzero(outside):
            flagged[i].append(f"{word} {ratios[i]:.2f}x")
    outlier = np.array([bool(f) for f in flagged], dtype=bool)
    note = np.array([", ".join(f) or None for f in flagged], dtype=object)
    return table.assign(first_cycle_ratio=ratio, first_cycle_outlier=outlier, first_cycle_note=note)


def first_cycle_lines(table: pd.DataFrame, limit: int) -> list[str]:
    """Terminal lines naming the experiments whose first cycle is an outlier (none: no lines)."""
    if "first_cycle_outlier" not in table:
        return []
    flagged = table[table["first_cycle_outlier"].fillna(False).astype(bool)]
    if not len(flagged):
        return []
    lines = [f"first cycle unlike the later ones (outside their {CONFIDENCE:.0%} prediction interval): a warm state "
             "not reached before measuring? Its value is in the mean and CI (docs/statistics.md):"]
    for _, row in flagged.head(limit).iterrows():
        lines.append(f"  {row['experiment_id']}: first cycle at {row['first_cycle_note']} the later cycles' mean")
    if len(flagged) > limit:
        lines.append(f"  ... {len(flagged) - limit} more (summary.csv: first_cycle_outlier)")
    return lines
