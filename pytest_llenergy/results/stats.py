"""Bootstrap confidence intervals across cycles: one sample (``bootstrap_ci``) or a whole run (``summarize``).

Experiment level: for each experiment and metric, the mean of its passed cycles and its interval:
Student's t below ``coverage.T_BELOW`` cycles (a bootstrap of 3 values is about their range and
covers ~75 %), a BCa bootstrap from there on (percentile when BCa is undefined); a point when all
values are equal; none when n < 2. Each interval carries its simulated coverage at its n.

Group level (``group_by``): a group's statistic is the mean of all cycle-level values of its
experiments, and its interval comes from a *stratified* bootstrap: every replicate resamples the
cycles of each experiment separately (independent strata), then pools them. The experiments of a
grid are fixed design points, not a random sample, so the interval expresses measurement noise
(cycle to cycle) around this group's mean; resampling the pooled values as if they were one
sample would count the spread between design points (batch 1 vs batch 64) as noise. Small groups
get the honest small-n treatment experiments get: where the group's effective size (Welch-Satterthwaite
df + 1 of its strata) is below ``T_BELOW``, Welch's t interval instead of the bootstrap; every group
interval carries its simulated coverage at that effective size.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from pytest_llenergy.results.bootstrap import (
    METHOD_BCA,
    METHOD_CONSTANT,
    METHOD_PERCENTILE,
    Strata,
    bca_mean_intervals,
    expanded_alpha,
    group_intervals,
)
from pytest_llenergy.results.coverage import (
    METHOD_T,
    coverage,
    coverage_arrays,
    cycles_needed,
    t_bounds,
    use_t,
)
from pytest_llenergy.results.first_cycle import mark_first_cycles
from pytest_llenergy.results.interval import BootstrapCI
from pytest_llenergy.results.metrics import metric_column
from pytest_llenergy.results.summary import Summary, experiment_table, group_labels
from pytest_llenergy.results.width import explain_widths

DEFAULT_METRICS: tuple[str, ...] = (
    "energy_j", "energy_adjusted_j", "energy_per_output_token_j", "energy_per_token_j",
    "adjusted_energy_per_output_token_j", "adjusted_energy_per_token_j", "tokens_per_s", "mean_power_w",
    "ttft_ms_mean", "itl_ms_mean",
)
METHOD_NONE = "none"
FEW_CYCLES = 3
SPREAD_TARGETS = (0.02, 0.05)  # n <= FEW_CYCLES: cycles the observed spread needs for these half-widths


def _spread_note(n: int, mean: float, sd: float, confidence: float) -> str | None:
    """At n <= FEW_CYCLES: how many cycles this spread needs for +-2 % and +-5 % (None when unknown)."""
    if not 2 <= n <= FEW_CYCLES or not (math.isfinite(mean) and math.isfinite(sd)) or mean == 0:
        return None
    needed = [cycles_needed(sd / abs(mean), target, confidence) for target in SPREAD_TARGETS]
    counts = ["more than 10000" if k is None else str(k) for k in needed]
    return (f"n={n}: the observed spread (sd {sd / abs(mean):.1%} of the mean) needs {counts[0]} cycles for "
            f"±{SPREAD_TARGETS[0] * 100:g} %, {counts[1]} for ±{SPREAD_TARGETS[1] * 100:g} %")


def _few_warning(n: int) -> str | None:
    if n == 0:
        return "no values"
    if n == 1:
        return "n=1: no confidence interval (needs at least 2 cycles)"
    if n < FEW_CYCLES:
        return f"n={n} < {FEW_CYCLES}: interval unreliable (run at least {FEW_CYCLES} cycles)"
    return None


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


def _scipy_interval(x: np.ndarray, confidence: float, n_resamples: int, seed: int | None,
                    method: str) -> tuple[float, float, str | None]:
    from scipy.stats import bootstrap  # lazily: scipy.stats takes ~0.5 s to import

    rng_kw = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"  # scipy < 1.15
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = bootstrap((x,), np.mean, vectorized=True, n_resamples=n_resamples, method=method,
                        confidence_level=confidence, **{rng_kw: np.random.default_rng(seed)})
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    degenerate = [str(w.message) for w in caught if "degenerate" in str(w.message).lower()]
    if math.isnan(low) or math.isnan(high) or degenerate:
        return math.nan, math.nan, degenerate[0] if degenerate else "interval undefined"
    return low, high, None


def bootstrap_ci(values: Sequence[float] | np.ndarray, *, confidence: float = 0.95, n_resamples: int = 10_000,
                 seed: int | None = None, method: str = "BCa", expand: bool = True) -> BootstrapCI:
    """CI of the mean of one sample, the way ``summarize`` computes it; NaN values are dropped.

    Student's t below ``T_BELOW`` values; from there ``scipy.stats.bootstrap`` with ``method``
    (BCa falls back to the percentile interval when degenerate). All-equal values give [v, v];
    n < 2 gives no interval; n <= 3 carries a warning with the cycles the spread needs for
    ±2 % / ±5 %. ``expand`` (the small-sample corrections: t below ``T_BELOW``, the bootstrap's
    nominal level widened above, ``bootstrap.expanded_alpha``); ``expand=False`` is scipy's
    interval at ``confidence`` exactly, at every n.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = x.size
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    few = _join(_few_warning(n), _spread_note(n, mean, sd, confidence))
    if n < 2:
        return BootstrapCI(n, mean, sd, math.nan, math.nan, METHOD_NONE, few, confidence)
    if np.ptp(x) == 0:
        note = f"all {n} values equal: the interval is the point [{mean:g}, {mean:g}]"
        return BootstrapCI(n, mean, 0.0, mean, mean, METHOD_CONSTANT, _join(few, note), confidence)
    kind = {"bca": "BCa", "percentile": "percentile", "basic": "basic"}.get(method.lower())
    if kind is None:
        raise ValueError(f"unknown bootstrap method {method!r} (BCa, percentile or basic)")
    if expand and use_t(n):
        t_low, t_high = t_bounds(np.float64(mean), np.float64(sd), np.float64(n), confidence)
        return BootstrapCI(n, mean, sd, float(t_low), float(t_high), METHOD_T, few, confidence,
                           *coverage(METHOD_T, n, confidence))
    level = 1 - 2 * float(expanded_alpha(confidence, n / (n - 1), n - 1)) if expand else confidence
    low, high, problem = _scipy_interval(x, level, n_resamples, seed, kind)
    if problem is None:
        cov = coverage(kind, n, confidence) if expand else (math.nan, math.nan)
        return BootstrapCI(n, mean, sd, low, high, kind, few, confidence, *cov)
    low, high, _ = _scipy_interval(x, level, n_resamples, seed, "percentile")
    note = f"{kind} undefined ({problem}): percentile interval"
    return BootstrapCI(n, mean, sd, low, high, METHOD_PERCENTILE, _join(few, note), confidence)


def _value_cube(passed: pd.DataFrame, experiments: list[str], metrics: Sequence[str]) -> np.ndarray:
    """values[metric, experiment, k]: each experiment's finite values first, NaN after."""
    codes = pd.Categorical(passed["experiment_id"], categories=experiments).codes
    pos = passed.groupby("experiment_id", sort=False).cumcount().to_numpy()
    width = int(pos.max()) + 1 if len(pos) else 1
    cube = np.full((len(metrics), len(experiments), width), np.nan)
    for m, name in enumerate(metrics):
        cube[m, codes, pos] = pd.to_numeric(passed[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    cube[~np.isfinite(cube)] = np.nan
    order = np.argsort(np.isnan(cube), axis=2, kind="stable")
    return np.take_along_axis(cube, order, axis=2)


def _describe(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n, mean and sd (ddof=1) over the last axis, ignoring NaN."""
    n = np.isfinite(cube).sum(axis=-1)
    total = np.nansum(cube, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        dev = np.where(np.isfinite(cube), cube - mean[..., None], 0.0)
        sd = np.where(n > 1, np.sqrt((dev**2).sum(axis=-1) / np.maximum(n - 1, 1)), np.nan)
    return n, mean, sd


def _warnings(n: np.ndarray, method: np.ndarray, mean: np.ndarray | None = None, sd: np.ndarray | None = None,
              confidence: float = 0.95) -> np.ndarray:
    """Warning text per cell: too few values (with the cycles the spread needs), a point interval,
    the percentile fallback."""
    text = np.full(n.shape, None, dtype=object)
    for k in range(FEW_CYCLES):
        text[n == k] = _few_warning(k)
    if mean is not None and sd is not None:
        for index in zip(*np.nonzero((n >= 2) & (n <= FEW_CYCLES))):
            text[index] = _join(text[index], _spread_note(int(n[index]), float(mean[index]), float(sd[index]),
                                                          confidence))
    notes = {METHOD_CONSTANT: "all values equal: the interval is a point",
             METHOD_PERCENTILE: "BCa undefined: percentile interval"}
    for kind, note in notes.items():
        hit = method == kind
        text[hit] = [_join(w, note) for w in text[hit]]
    return text


@dataclass
class _Groups:
    """Experiments' group index and the per-(metric, group) accumulators."""

    of_experiment: np.ndarray
    labels: pd.DataFrame
    sink: np.ndarray
    weight: np.ndarray  # (metric, experiment): n_e / N_group
    offset: np.ndarray  # (experiment,): position within its group


def _make_groups(df: pd.DataFrame, experiments: list[str], group_by: Sequence[str], n: np.ndarray,
                 n_resamples: int) -> _Groups:
    labels, of_experiment = group_labels(df, experiments, list(dict.fromkeys(group_by)))
    g = len(labels)
    n_metrics = n.shape[0]
    totals = np.zeros((n_metrics, g))
    for m in range(n_metrics):
        totals[m] = np.bincount(of_experiment, weights=n[m], minlength=g)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(totals[:, of_experiment] > 0, n / totals[:, of_experiment], 0.0)
    offset = pd.Series(of_experiment).groupby(of_experiment).cumcount().to_numpy()
    return _Groups(of_experiment, labels, np.zeros((n_metrics * g, n_resamples)), weight, offset)


def _experiment_intervals(cube: np.ndarray, n: np.ndarray, *, confidence: float, n_resamples: int,
                          rng: np.random.Generator, groups: _Groups | None,
                          expand: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CI bounds and methods for every (metric, experiment), batched by sample size.

    Sizes below ``T_BELOW`` get Student's t (when ``expand``); they are still bootstrapped when
    groups need their resamples.
    """
    low = np.full(n.shape, np.nan)
    high = np.full(n.shape, np.nan)
    method = np.full(n.shape, METHOD_NONE, dtype=object)
    n_groups = len(groups.labels) if groups is not None else 0
    for size in np.unique(n[n >= 2]):
        m_idx, e_idx = np.nonzero(n == size)
        values = cube[m_idx, e_idx, :size]
        small = expand and use_t(int(size))
        if not small or groups is not None:
            strata = None
            if groups is not None:
                strata = Strata(groups.sink, m_idx * n_groups + groups.of_experiment[e_idx],
                                groups.weight[m_idx, e_idx], groups.offset[e_idx])
            res = bca_mean_intervals(values, confidence=confidence, n_resamples=n_resamples,
                                     rng=rng, strata=strata, expand=expand)
            low[m_idx, e_idx], high[m_idx, e_idx], method[m_idx, e_idx] = res.low, res.high, res.method
        if small:
            mean, sd = values.mean(axis=1), values.std(axis=1, ddof=1)
            lo, hi = t_bounds(mean, sd, np.full(mean.shape, size), confidence)
            constant = np.ptp(values, axis=1) == 0
            low[m_idx, e_idx] = np.where(constant, mean, lo)
            high[m_idx, e_idx] = np.where(constant, mean, hi)
            method[m_idx, e_idx] = np.where(constant, METHOD_CONSTANT, METHOD_T)
    return low, high, method


def _group_variance(sd: np.ndarray, n: np.ndarray, weight: np.ndarray,
                    by_group: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: the unbiased variance of its mean ``sum(w_e mean_e)``, its Welch-Satterthwaite df,
    and the variance the bootstrap sees (``(n_e - 1) / n_e`` of each stratum's)."""
    ok = n > 1
    size = np.where(ok, n, 2).astype(np.float64)
    var = np.where(ok, weight**2 * np.nan_to_num(sd) ** 2 / size, 0.0)  # unbiased variance of w_e * mean_e
    total = by_group(var)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = total**2 / by_group(np.where(ok, var**2 / (size - 1), 0.0))
    return total, df, by_group(var * (size - 1) / size)


def _group_alpha(total: np.ndarray, df: np.ndarray, boot: np.ndarray, confidence: float, expand: bool) -> np.ndarray:
    """Per-group tail: the stratified analogue of the one-sample expansion (Welch-Satterthwaite df)."""
    alpha = (1 - confidence) / 2
    if not expand:
        return np.full(total.shape, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        return expanded_alpha(confidence, total / boot, df)


def _group_t(mean: np.ndarray, total: np.ndarray, df: np.ndarray, method: np.ndarray, confidence: float,
             expand: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Small groups get the interval small experiments get: Student's t, here Welch's
    ``mean +- t_df sqrt(sum w_e^2 s_e^2 / n_e)`` with the Welch-Satterthwaite df, where the group's
    effective size ``df + 1`` is below ``T_BELOW`` (a bootstrap of 3 cycles is about their range and
    covers ~75 %). Returns (use t, low, high, effective size for the coverage table)."""
    n_eff = np.where(np.isfinite(df), np.floor(df + 1 + 1e-9), 0).astype(int)
    small = (method == METHOD_BCA) & use_t(n_eff) if expand else np.zeros(mean.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        half = stdtrit(np.where(small, df, 1.0), (1 + confidence) / 2) * np.sqrt(total)
    return small, mean - half, mean + half, n_eff


def _group_statistics(cube: np.ndarray, n: np.ndarray, mean: np.ndarray, sd: np.ndarray, groups: _Groups,
                      confidence: float, expand: bool) -> dict[str, np.ndarray]:
    """(metric, group) arrays: n, mean, sd, ci_low, ci_high, method."""
    n_metrics, _, _ = cube.shape
    g = len(groups.labels)
    flat_group = (np.arange(n_metrics)[:, None] * g + groups.of_experiment[None, :]).ravel()
    size = n.astype(np.float64)
    centred = np.where(np.isfinite(cube), cube - mean[..., None], 0.0)
    u = groups.weight[..., None] * centred
    with np.errstate(invalid="ignore", divide="ignore"):
        num = np.where(n > 1, (u**3).sum(-1) / size**3, 0.0)
        den = np.where(n > 1, (u**2).sum(-1) / size**2, 0.0)

    def by_group(values: np.ndarray) -> np.ndarray:
        return np.bincount(flat_group, weights=values.ravel(), minlength=n_metrics * g)

    n_group = by_group(size)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_mean = np.where(n_group > 0, by_group(np.nan_to_num(mean) * size) / n_group, np.nan)
        accel = by_group(num) / (6 * by_group(den) ** 1.5)
        pooled = (cube - g_mean.reshape(n_metrics, g)[:, groups.of_experiment][..., None]) ** 2
        g_sd = np.sqrt(by_group(np.nansum(pooled, axis=-1)) / (n_group - 1))
    spread = np.zeros(n_metrics * g)
    np.maximum.at(spread, flat_group, np.where(n > 1, np.abs(centred).max(-1), 0.0).ravel())
    total, df, boot = _group_variance(sd, n, groups.weight, by_group)
    alpha = _group_alpha(total, df, boot, confidence, expand)
    res = group_intervals(groups.sink, np.nan_to_num(g_mean), accel, spread, alpha=alpha)
    resampled = by_group((n >= 2).astype(np.float64)) > 0
    small, t_low, t_high, n_eff = _group_t(np.nan_to_num(g_mean), total, df, res.method, confidence, expand)
    low = np.where(resampled, np.where(small, t_low, res.low), np.nan)
    high = np.where(resampled, np.where(small, t_high, res.high), np.nan)
    method = np.where(resampled, np.where(small, METHOD_T, res.method), METHOD_NONE).astype(object)
    single = by_group((n == 1).astype(np.float64)).astype(int)
    # coverage at the group's effective size (Welch-Satterthwaite df + 1; one stratum: its n)
    cov_normal, cov_skewed = (coverage_arrays(method, n_eff, confidence) if expand
                              else (np.full(low.shape, np.nan),) * 2)
    out = {"n": n_group.astype(int), "mean": g_mean, "sd": np.where(n_group > 1, g_sd, np.nan),
           "ci_low": low, "ci_high": high, "method": method,
           "coverage": cov_normal, "coverage_skewed": cov_skewed,
           "warning": _group_warnings(n_group.astype(int), method, single, resampled)}
    return {k: v.reshape(n_metrics, g) for k, v in out.items()}


def _group_warnings(n: np.ndarray, method: np.ndarray, single: np.ndarray, resampled: np.ndarray) -> np.ndarray:
    """The usual warnings, plus what single-cycle experiments do to a group's interval."""
    warning = _warnings(n, method)
    for i in np.flatnonzero(single > 0):
        note = (f"{single[i]} experiment(s) with a single cycle add no cycle-to-cycle noise" if resampled[i]
                else "no experiment has 2 or more cycles: no interval")
        warning[i] = _join(warning[i], note)
    return warning


def summarize(df: pd.DataFrame, *, metrics: Sequence[str] = DEFAULT_METRICS, group_by: Sequence[str] | None = None,
              seed: int | None = None, n_resamples: int = 10_000, confidence: float = 0.95,
              expand: bool = True) -> Summary:
    """Per-experiment (and per-group) statistics across the passed cycles of ``df`` (as ``load`` returns).

    ``metrics`` are columns or short names (``energy_per_output_token``); ``seed`` None draws one
    (recorded in the Summary); ``expand`` is the small-sample expansion of the BCa level (see
    ``bootstrap.expanded_alpha``).
    """
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    resolved = [m if m in df.columns else metric_column(m) for m in metrics]  # unknown names raise
    metrics = [m for m in dict.fromkeys(resolved) if m in df.columns]
    experiments = sorted(df["experiment_id"].unique().tolist()) if len(df) else []
    passed = df[df["status"] == "passed"] if len(df) else df
    cube = _value_cube(passed, experiments, metrics)
    n, mean, sd = _describe(cube)
    rng = np.random.default_rng(seed)
    groups = _make_groups(df, experiments, group_by, n, n_resamples) if group_by and experiments else None
    low, high, method = _experiment_intervals(cube, n, confidence=confidence, n_resamples=n_resamples, rng=rng,
                                              groups=groups, expand=expand)
    cov_normal, cov_skewed = coverage_arrays(method, n, confidence) if expand else (np.full(n.shape, np.nan),) * 2
    exp_stats = {"n": n, "mean": mean, "sd": sd, "ci_low": low, "ci_high": high, "method": method,
                 "coverage": cov_normal, "coverage_skewed": cov_skewed,
                 "warning": _warnings(n, method, mean, sd, confidence)}
    table = experiment_table(df, experiments)
    stat_columns = {f"{name}_{key}": values[m] for m, name in enumerate(metrics) for key, values in exp_stats.items()}
    config = [c for c in table.columns if c.startswith("config.")]
    table = pd.concat([table.drop(columns=config), pd.DataFrame(stat_columns), table[config]], axis=1)
    group_table = None
    if groups is not None:
        g_stats = _group_statistics(cube, n, mean, sd, groups, confidence, expand)
        columns = {f"{name}_{key}": values[m] for m, name in enumerate(metrics)
                   for key, values in g_stats.items()}
        group_table = pd.concat([groups.labels, pd.DataFrame(columns)], axis=1)
        group_table.insert(1, "n_experiments", np.bincount(groups.of_experiment, minlength=len(groups.labels)))
    summary = Summary(experiments=table, groups=group_table, metrics=tuple(metrics),
                      group_by=tuple(dict.fromkeys(group_by or ())), seed=seed, n_resamples=n_resamples,
                      confidence=confidence, expanded=expand, header=_header(df),
                      skipped=list(df.attrs.get("skipped", [])))
    summary.experiments = mark_first_cycles(df, explain_widths(df, table, summary.main_metric, confidence=confidence),
                                            summary.main_metric)
    return summary


def _header(df: pd.DataFrame) -> dict[str, Any]:
    def unique(col: str) -> list[Any]:
        return sorted({v for v in df[col].dropna().tolist()}) if col in df.columns and len(df) else []

    cycles = df["cycles_total"].max() if len(df) and "cycles_total" in df else None
    return {"campaigns": unique("campaign"), "run_ids": unique("run_id"), "energy_sources": unique("energy_source"),
            "run_dirs": unique("run_dir"),
            "cycles_configured": int(cycles) if cycles is not None and not pd.isna(cycles) else None,
            "items": int(len(df)), "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


__all__ = ["DEFAULT_METRICS", "BootstrapCI", "bootstrap_ci", "summarize"]
