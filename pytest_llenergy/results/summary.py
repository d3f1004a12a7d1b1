"""``Summary``: the statistics of a run, one row per experiment (and per group), ready to export."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pytest_llenergy.results.coverage import T_BELOW
from pytest_llenergy.results.interval import BootstrapCI
from pytest_llenergy.results.metrics import MAIN_METRICS

STAT_KEYS: tuple[str, ...] = ("n", "mean", "sd", "ci_low", "ci_high", "method", "coverage", "coverage_skewed",
                               "warning")
#: Identity of an experiment besides its settings (those are its ``config.*`` columns, placed last).
IDENTITY_COLUMNS: tuple[str, ...] = ("campaign", "backend", "model")
FLAG_NAMES: tuple[str, ...] = ("estimated", "simulated", "throttled", "short_window")
_MEAN_COLUMNS = ("duration_s", "output_tokens", "mean_utilization_pct", "batch_latency_s_mean", "ttft_ms_p95",
                 "itl_ms_p95", "disagreement_pct", "throttle_s", "power_capped_share", "baseline_power_w", "gap_waited_s", "load_time_s")
_MAX_COLUMNS = ("peak_memory_mb", "max_temperature_c")


def resolve_group_column(df: pd.DataFrame, path: str) -> str:
    """The frame column for a group_by path: ``workload.batch_size`` -> ``config.workload.batch_size``."""
    for candidate in (path if path.startswith("config.") else f"config.{path}", path):
        if candidate in df.columns:
            return candidate
    known = sorted(c.removeprefix("config.") for c in df.columns if c.startswith("config."))
    raise ValueError(f"group_by: unknown config path {path!r}; known: {', '.join(known)}")


def group_labels(df: pd.DataFrame, experiments: list[str], group_by: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per group (``group`` label, one column per resolved path) and each experiment's group index."""
    columns = [resolve_group_column(df, path) for path in group_by]
    first = df.drop_duplicates("experiment_id").set_index("experiment_id").reindex(experiments)
    keys = [tuple("None" if pd.isna(v) else str(v) for v in row) for row in first[columns].itertuples(index=False)]
    unique = sorted(set(keys), key=lambda k: tuple((_numeric_key(v), v) for v in k))
    index = {key: i for i, key in enumerate(unique)}
    labels = pd.DataFrame([dict(zip(columns, key)) for key in unique], columns=columns)
    labels.insert(0, "group", [", ".join(f"{p}={v}" for p, v in zip(group_by, key)) for key in unique])
    return labels, np.array([index[k] for k in keys], dtype=np.intp)


def _numeric_key(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.inf


def _flag_counts(passed: pd.DataFrame, col: str, value: bool) -> pd.Series:
    """Per experiment: cycles whose flag ``col`` equals ``value`` (missing flags count as neither)."""
    if col not in passed:
        return pd.Series(dtype="float64")
    hits = (passed[col].astype("boolean") == value).fillna(False).astype("int64")
    return hits.groupby(passed["experiment_id"]).sum()


def experiment_table(df: pd.DataFrame, experiments: list[str]) -> pd.DataFrame:
    """One row per experiment: identity, item counts, extended metrics over passed cycles, flags, config."""
    table = pd.DataFrame({"experiment_id": experiments})
    if not experiments:
        return table
    first = df.drop_duplicates("experiment_id").set_index("experiment_id").reindex(experiments)
    for col in IDENTITY_COLUMNS:
        table[col] = first[col].to_numpy() if col in first else None
    counts = df.groupby(["experiment_id", "status"]).size().unstack(fill_value=0).reindex(experiments, fill_value=0)
    table["items"] = counts.sum(axis=1).to_numpy()
    for name in ("passed", "failed"):
        table[f"n_{name}"] = counts[name].to_numpy() if name in counts else 0
    passed = df[df["status"] == "passed"]
    grouped = passed.groupby("experiment_id")

    def per_experiment(values: pd.Series) -> np.ndarray:
        return values.reindex(experiments).to_numpy()

    throttle = sorted(c for c in df.columns if c.startswith("throttle_") and c.endswith("_s") and c != "throttle_s")
    for col in [c for c in (*_MEAN_COLUMNS, *throttle) if c in passed]:
        table[f"{col}_mean"] = per_experiment(grouped[col].mean())
    for col in [c for c in _MAX_COLUMNS if c in passed]:
        table[f"{col}_max"] = per_experiment(grouped[col].max())
    if "energy_source" in passed:
        sources = passed[["experiment_id", "energy_source"]].dropna().drop_duplicates().sort_values("energy_source")
        table["energy_source"] = per_experiment(sources.groupby("experiment_id")["energy_source"].agg(",".join))
    for flag in ("estimated", "simulated"):
        table[flag] = np.nan_to_num(per_experiment(_flag_counts(passed, flag, True)).astype(float)) > 0
    for flag in ("throttled", "short_window"):
        table[f"{flag}_cycles"] = np.nan_to_num(per_experiment(_flag_counts(passed, flag, True)).astype(float)).astype(int)
    unconverged = per_experiment(_flag_counts(passed, "warmup_converged", False)).astype(float)
    table["warmup_unconverged_cycles"] = np.nan_to_num(unconverged).astype(int)
    config = first[[c for c in df.columns if c.startswith("config.")]].reset_index(drop=True)
    return pd.concat([table, config], axis=1)


@dataclass
class Summary:
    """Statistics of one or more runs: ``experiments`` (and ``groups``) in wide form, plus run metadata.

    Statistic columns are ``<metric>_<key>`` for key in STAT_KEYS (``energy_j_ci_low`` ...).
    """

    experiments: pd.DataFrame
    groups: pd.DataFrame | None
    metrics: tuple[str, ...]
    group_by: tuple[str, ...]
    seed: int
    n_resamples: int
    confidence: float
    expanded: bool = True
    header: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    search: dict[str, Any] | None = None  # a search's answer (results.search_report.search_answer)

    @property
    def main_metric(self) -> str | None:
        """Adjusted J per output token when measured, else raw J per output token, else the first metric."""
        for metric in MAIN_METRICS:
            col = f"{metric}_mean"
            if metric in self.metrics and col in self.experiments and self.experiments[col].notna().any():
                return metric
        fallback = [m for m in MAIN_METRICS[1:] if m in self.metrics] or list(self.metrics)
        return fallback[0] if fallback else None

    def _stat(self, row: pd.Series, metric: str) -> BootstrapCI | None:
        if f"{metric}_mean" not in row.index:
            return None
        values = {key: row[f"{metric}_{key}"] for key in STAT_KEYS}
        n = 0 if pd.isna(values["n"]) else int(values["n"])
        warning = values["warning"] if isinstance(values["warning"], str) else None
        return BootstrapCI(n, float(values["mean"]), float(values["sd"]), float(values["ci_low"]),
                           float(values["ci_high"]), str(values["method"]), warning, self.confidence,
                           float(values["coverage"]), float(values["coverage_skewed"]))

    def ci(self, experiment_id: str, metric: str) -> BootstrapCI | None:
        """The ``BootstrapCI`` of one experiment's metric (None when unknown)."""
        rows = self.experiments[self.experiments["experiment_id"] == experiment_id]
        return self._stat(rows.iloc[0], metric) if len(rows) else None

    def group_ci(self, group: str, metric: str) -> BootstrapCI | None:
        """The ``BootstrapCI`` of one group's metric, by its label (``backend=vllm``)."""
        if self.groups is None:
            return None
        rows = self.groups[self.groups["group"] == group]
        return self._stat(rows.iloc[0], metric) if len(rows) else None

    @property
    def method(self) -> str:
        """How the intervals were computed, in words."""
        if not self.expanded:
            return (f"{self.confidence:.0%} BCa bootstrap of the mean (scipy's, no small-sample correction), "
                    f"percentile where BCa is undefined, {self.n_resamples} resamples, seed {self.seed}")
        return (f"{self.confidence:.0%} interval of the mean: Student's t below {T_BELOW} cycles, from {T_BELOW} a BCa "
                f"bootstrap small-sample expanded (Hesterberg 2015), percentile where BCa is undefined, "
                f"{self.n_resamples} resamples, seed {self.seed}; groups: stratified BCa")

    @property
    def cycles_configured(self) -> int | None:
        return self.header.get("cycles_configured")

    @property
    def n_experiments(self) -> int:
        return int(len(self.experiments))

    def flag_counts(self) -> dict[str, int]:
        """Experiments estimated / simulated, cycles throttled / short window / failed / unconverged warmup,
        experiments whose first cycle is unlike the later ones."""
        t = self.experiments

        def total(col: str) -> int:
            return int(pd.to_numeric(t[col], errors="coerce").fillna(0).sum()) if col in t else 0

        return {"experiments": int(len(t)), "estimated": total("estimated"), "simulated": total("simulated"),
                "throttled_cycles": total("throttled_cycles"), "short_window_cycles": total("short_window_cycles"),
                "failed_cycles": total("n_failed"), "warmup_unconverged_cycles": total("warmup_unconverged_cycles"),
                "first_cycle_outliers": total("first_cycle_outlier")}

    def table(self) -> pd.DataFrame:
        """The CSV shape: experiment rows then group rows, a ``level`` column saying which."""
        exp = self.experiments.copy()
        exp.insert(0, "level", "experiment")
        exp.insert(2, "group", None)
        if "n_passed" in exp:
            exp.insert(3, "n", exp["n_passed"])
        if self.groups is None or not len(self.groups):
            return exp
        grp = self.groups.copy()
        grp.insert(0, "level", "group")
        main = self.main_metric
        if main and f"{main}_n" in grp:
            grp.insert(2, "n", grp[f"{main}_n"])
        return pd.concat([exp, grp], ignore_index=True, sort=False)
