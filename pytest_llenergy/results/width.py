"""Why is a confidence interval wide? The cycle-to-cycle variance of the main metric, split by cause.

Adjusted J per output token of one cycle is ``T (P - B) / tokens``: window duration T, mean board
power P and idle baseline B. Its log varies as ``log(T / tokens) + log(P - B)``; to first order the
variance splits into

- **duration**: ``var(log(T / tokens))``, the generate calls running longer or shorter between cycles;
- **power**: ``var(P) / (P - B)^2``, the mean power moving between cycles;
- **baseline**: ``var(B) / (P - B)^2`` (the baseline re-measured or drifting between cycles) plus,
  when results carry it, the per-cycle baseline uncertainty over the adjusted energy, squared: the
  budget's ``uncertainty_baseline_sd_j`` and ``uncertainty_baseline_drift_j`` in quadrature, or
  ``adjusted_uncertainty_j`` when the parts are missing.

Shares are each term over their sum (covariances left out). For raw metrics there is no baseline
term and the power term is ``var(log P)``. Every experiment whose interval is wider than the target
(±3 %) gets the shares and the cycles its observed spread needs for ±3 % and ±5 %.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pytest_llenergy.results.coverage import cycles_needed

WIDE_TARGET = 0.03
CYCLE_TARGETS = (0.03, 0.05)
CAUSES = ("duration", "power", "baseline")
CAUSE_WORDS = {"duration": "duration variance between cycles", "power": "power variance between cycles",
               "baseline": "baseline uncertainty"}
ADJUSTED = ("adjusted_energy_per_output_token_j", "adjusted_energy_per_token_j", "energy_adjusted_j")
_TOKENS = {"adjusted_energy_per_output_token_j": "output_tokens", "energy_per_output_token_j": "output_tokens",
           "adjusted_energy_per_token_j": "total_tokens", "energy_per_token_j": "total_tokens"}


def _column(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name not in rows:
        return np.full(len(rows), np.nan)
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _baseline_uncertainty(rows: pd.DataFrame) -> np.ndarray:
    """Per cycle, the baseline's part of the adjusted energy's uncertainty (J, 1 sd): the baseline sd and
    drift parts of the uncertainty budget when present, else the whole ``adjusted_uncertainty_j``."""
    sd, drift = _column(rows, "uncertainty_baseline_sd_j"), _column(rows, "uncertainty_baseline_drift_j")
    parts = np.sqrt(np.nan_to_num(sd) ** 2 + np.nan_to_num(drift) ** 2)
    have_parts = np.isfinite(sd) | np.isfinite(drift)
    return np.where(have_parts, parts, _column(rows, "adjusted_uncertainty_j"))


def variance_shares(rows: pd.DataFrame, metric: str) -> dict[str, float] | None:
    """Shares (summing to 1) of duration, power and baseline in one experiment's cycle-to-cycle variance.

    None with fewer than 2 cycles carrying duration and power, or when nothing varies.
    """
    duration = _column(rows, "window_duration_s")
    if np.isnan(duration).all():
        duration = _column(rows, "duration_s")
    tokens = _column(rows, _TOKENS[metric]) if metric in _TOKENS else np.ones(len(rows))
    power = _column(rows, "mean_power_w")
    adjusted = metric in ADJUSTED
    baseline = _column(rows, "baseline_power_w") if adjusted else np.zeros(len(rows))
    ok = np.isfinite(duration) & np.isfinite(tokens) & np.isfinite(power) & np.isfinite(baseline) & (duration > 0) \
        & (tokens > 0) & (power > baseline)
    if ok.sum() < 2:
        return None
    net = float(np.mean(power[ok] - baseline[ok]))
    parts = {"duration": float(np.var(np.log(duration[ok] / tokens[ok]), ddof=1)),
             "power": float(np.var(power[ok], ddof=1)) / net**2,
             "baseline": float(np.var(baseline[ok], ddof=1)) / net**2 if adjusted else 0.0}
    if adjusted:
        unc, energy = _baseline_uncertainty(rows), _column(rows, "energy_adjusted_j")
        rel = unc[ok] / np.abs(energy[ok])
        rel = rel[np.isfinite(rel)]
        if rel.size:
            parts["baseline"] += float(np.mean(rel**2))
    total = sum(parts.values())
    if not total > 0:
        return None
    return {k: v / total for k, v in parts.items()}


def width_note(shares: dict[str, float] | None, needed: tuple[int | None, ...]) -> str:
    """``duration variance between cycles 71 %, power 12 %, baseline 17 %; ±3 % needs 85 cycles, ±5 % 31``."""
    counts = ["more than 10000" if k is None else str(k) for k in needed]
    cycles = f"±{CYCLE_TARGETS[0]:.0%} needs {counts[0]} cycles, ±{CYCLE_TARGETS[1]:.0%} {counts[1]}"
    if shares is None:
        return f"cause unknown (no duration/power per cycle); {cycles}"
    ranked = sorted(CAUSES, key=lambda k: -shares[k])
    words = [f"{CAUSE_WORDS[ranked[0]]} {shares[ranked[0]]:.0%}"] + [f"{k} {shares[k]:.0%}" for k in ranked[1:]]
    return f"{', '.join(words)}; {cycles}"


def explain_widths(df: pd.DataFrame, table: pd.DataFrame, metric: str | None, *, confidence: float = 0.95,
                   target: float = WIDE_TARGET) -> pd.DataFrame:
    """``table`` plus, per experiment, ``ci_wide`` (half-width of ``metric`` above ``target``), the shares
    ``ci_share_<cause>``, ``cycles_for_3pct`` / ``cycles_for_5pct`` and ``ci_width_note`` (wide rows)."""
    out = table.copy()
    n = len(out)
    columns = {"ci_wide": np.zeros(n, dtype=bool), **{f"ci_share_{c}": np.full(n, np.nan) for c in CAUSES},
               "cycles_for_3pct": np.full(n, np.nan), "cycles_for_5pct": np.full(n, np.nan),
               "ci_width_note": np.full(n, None, dtype=object)}
    if metric is None or f"{metric}_mean" not in out or not n:
        return out.assign(**columns)
    passed = df[df["status"] == "passed"] if "status" in df else df
    groups = dict(tuple(passed.groupby("experiment_id"))) if len(passed) else {}
    for i, row in enumerate(out.itertuples(index=False)):
        mean, sd = getattr(row, f"{metric}_mean"), getattr(row, f"{metric}_sd")
        low, high = getattr(row, f"{metric}_ci_low"), getattr(row, f"{metric}_ci_high")
        if not all(isinstance(v, float) and math.isfinite(v) for v in (mean, sd, low, high)) or mean == 0:
            continue
        needed = tuple(cycles_needed(sd / abs(mean), t, confidence) for t in CYCLE_TARGETS)
        columns["cycles_for_3pct"][i], columns["cycles_for_5pct"][i] = (np.nan if k is None else k for k in needed)
        shares = variance_shares(groups.get(row.experiment_id, passed.iloc[:0]), metric)
        for cause in CAUSES:
            columns[f"ci_share_{cause}"][i] = np.nan if shares is None else shares[cause]
        if (high - low) / 2 / abs(mean) > target:
            columns["ci_wide"][i] = True
            rows = groups.get(row.experiment_id, passed.iloc[:0])
            host = "host_bound" in rows and rows["host_bound"].astype("boolean").fillna(False).any()
            columns["ci_width_note"][i] = width_note(shares, needed) + (
                " (host-bound: a GPU-bound decode path steadies the duration)" if host else "")
    return out.assign(**columns)
