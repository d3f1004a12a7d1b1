"""``summary.json`` and ``summary.csv``: the statistics of a run, written atomically.

CSV: one row per experiment then one per group, ``level`` = experiment | group, flat columns with
units in their names (``energy_adjusted_j_mean``, ``..._sd``, ``..._ci_low``, ``..._ci_high``, ``n``),
extended metrics and flags; missing cells are empty. JSON: a run header, flag counts, the
environment reference, and per-experiment and per-group statistics (missing values are null).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_llenergy.results.placement import mixed_hardware, placements
from pytest_llenergy.results.store import RunDirectory, atomic_write_bytes
from pytest_llenergy.results.summary import STAT_KEYS, Summary

SUMMARY_SCHEMA_VERSION = 1
_IDENTITY = ("experiment_id", "campaign", "backend", "model")


def _plain(value: Any) -> Any:
    """JSON-safe scalar: numpy to Python, NaN/NA to None."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def _stats(row: pd.Series, metrics: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    out = {}
    for metric in metrics:
        block = {key: _plain(row.get(f"{metric}_{key}")) for key in STAT_KEYS}
        if block["n"]:
            out[metric] = block
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"config.workload.batch_size": 8}`` -> ``{"workload": {"batch_size": 8}}`` (missing values dropped)."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        value = _plain(value)
        if value is None:
            continue
        node = tree
        parts = key.removeprefix("config.").split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return tree


def _experiment_entries(summary: Summary) -> list[dict[str, Any]]:
    stat_cols = {f"{m}_{k}" for m in summary.metrics for k in STAT_KEYS}
    entries = []
    for _, row in summary.experiments.iterrows():
        extended = {c: _plain(v) for c, v in row.items()
                    if c not in stat_cols and c not in _IDENTITY and not c.startswith("config.")}
        entries.append({**{c: _plain(row.get(c)) for c in _IDENTITY}, **extended,
                        "stats": _stats(row, summary.metrics),
                        "config": _nest({c: v for c, v in row.items() if c.startswith("config.")})})
    return entries


def _group_entries(summary: Summary) -> list[dict[str, Any]]:
    if summary.groups is None:
        return []
    key_cols = [c for c in summary.groups.columns if c not in ("group", "n_experiments") and not c.startswith(
        tuple(f"{m}_" for m in summary.metrics))]
    return [{"group": row["group"], "key": {c: _plain(row[c]) for c in key_cols},
             "n_experiments": _plain(row["n_experiments"]), "stats": _stats(row, summary.metrics)}
            for _, row in summary.groups.iterrows()]


def environment_reference(run_dirs: list[Path]) -> str | None:
    """The first run's ``environment.json`` (as a path string), when present."""
    for run_dir in run_dirs:
        if (path := RunDirectory(run_dir).environment_path).is_file():
            return str(path)
    return None


def summary_payload(summary: Summary, *, run_dirs: list[Path] | None = None) -> dict[str, Any]:
    """The ``summary.json`` document as a dict (``run_dirs`` default: the sources in the results)."""
    if run_dirs is None:
        run_dirs = [Path(p) for p in summary.header.get("run_dirs", [])]
    header = dict(summary.header)
    wall_time = header.pop("wall_time", None)
    table = summary.experiments
    header.update(seed=summary.seed, n_resamples=summary.n_resamples, confidence=summary.confidence,
                  method=summary.method, expanded=summary.expanded,
                  group_by=list(summary.group_by), main_metric=summary.main_metric,
                  estimated=bool(table.get("estimated", pd.Series(dtype=bool)).any()),
                  simulated=bool(table.get("simulated", pd.Series(dtype=bool)).any()),
                  sources=[str(p) for p in run_dirs or []])
    return {"schema_version": SUMMARY_SCHEMA_VERSION, "run": header, "flags": summary.flag_counts(),
            "environment": environment_reference(list(run_dirs or [])), "skipped_files": summary.skipped,
            "experiments": _experiment_entries(summary), "groups": _group_entries(summary),
            "placements": placements(list(run_dirs or [])), "hardware_warning": mixed_hardware(list(run_dirs or [])),
            "wall_time": wall_time, **({"search": summary.search} if summary.search is not None else {})}


def write_summary_json(path: Path, summary: Summary, *, run_dirs: list[Path] | None = None) -> Path:
    payload = summary_payload(summary, run_dirs=run_dirs)
    atomic_write_bytes(Path(path), (json.dumps(payload, indent=2, allow_nan=False) + "\n").encode())
    return Path(path)


def summary_csv_frame(summary: Summary) -> pd.DataFrame:
    """The CSV table: level, ids, n, statistics, extended metrics and flags, group keys, config."""
    table = summary.table()
    stats = [f"{m}_{k}" for m in summary.metrics for k in STAT_KEYS if f"{m}_{k}" in table]
    front = [c for c in ("level", "experiment_id", "group", "n", "n_experiments", *_IDENTITY[1:], "items", "n_passed",
                         "n_failed") if c in table]
    config = [c for c in table.columns if c.startswith("config.")]
    rest = [c for c in table.columns if c not in {*front, *stats, *config}]
    return table[front + stats + rest + config]


def write_summary_csv(path: Path, summary: Summary) -> Path:
    text = summary_csv_frame(summary).to_csv(index=False, na_rep="", float_format="%.10g")
    atomic_write_bytes(Path(path), text.encode())
    return Path(path)
