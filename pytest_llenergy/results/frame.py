"""Results as a flat table: one row per (experiment, cycle), units in the column names.

``load(path)`` reads one run directory, several, a parent holding run directories, or single result
files. Missing figures are NaN (numbers) or None/<NA> (text, flags), never 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from pytest_llenergy.results.carbon import footprint_columns
from pytest_llenergy.results.requests import phase_columns, request_frame
from pytest_llenergy.results.schema import ExperimentResult, WindowEnergy
from pytest_llenergy.results.store import EXPERIMENTS_DIR, RowCache, RunDirectory, load_result_file

# Columns that always exist, in this order; throttle_<cause>_s and config.* follow. Each campaign setting has one
# column, named by its path (``config.workload.batch_size``, ``config.precision``), what ``group_by`` takes.
CORE_COLUMNS: tuple[str, ...] = (
    "campaign", "run_id", "experiment_id", "experiment_index", "cycle", "cycles_total", "item_id",
    "status", "error", "backend", "model", "started_at", "ended_at",
    "duration_s", "input_tokens", "output_tokens", "total_tokens", "tokens_per_s", "output_tokens_per_s",
    "energy_source", "window_duration_s", "energy_j", "energy_adjusted_j", "counter_energy_j",
    "integral_energy_j", "disagreement_pct", "edge_corrected", "edge_method", "uncertainty_j",
    "adjusted_uncertainty_j", "uncertainty_pct", "uncertain", "uncertainty_counter_quantisation_j",
    "uncertainty_series_counter_j", "uncertainty_short_window_j", "uncertainty_baseline_sd_j",
    "uncertainty_baseline_drift_j", "host_bound", "energy_per_output_token_j",
    "energy_per_token_j", "adjusted_energy_per_output_token_j", "adjusted_energy_per_token_j",
    "mean_power_w", "peak_power_w", "n_samples", "sample_hz", "n_devices", "mean_utilization_pct",
    "max_temperature_c", "peak_memory_mb", "estimated", "simulated", "throttled", "short_window",
    "throttle_s", "power_capped_share", "flags", "latency_mode", "batch_latency_s_mean", "ttft_ms_mean", "ttft_ms_p95",
    "itl_ms_mean", "itl_ms_p95", "warmup_converged", "warmup_iterations", "warmup_final_cv", "warmup_outcome", "warmup_s",
    "baseline_power_w", "baseline_method", "baseline_deep_idle_w", "gap_kind", "gap_waited_s",
    "load_cold", "load_time_s", "load_status", "n_windows", "warnings", "timeseries_path", "run_dir", "source_file",
)
FLAG_COLUMNS: tuple[str, ...] = ("estimated", "simulated", "throttled", "short_window", "warmup_converged", "load_cold",
                                 "edge_corrected", "uncertain", "host_bound")
INT_COLUMNS: tuple[str, ...] = ("experiment_index", "cycle", "cycles_total")
TEXT_COLUMNS: tuple[str, ...] = (
    "campaign", "run_id", "experiment_id", "item_id", "status", "error", "backend", "model",
    "started_at", "ended_at", "energy_source", "edge_method", "flags", "latency_mode", "baseline_method", "gap_kind",
    "warnings", "timeseries_path", "run_dir", "source_file", "requests_path", "phase_flags", "warmup_outcome", "load_status",
)


def _sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _max(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _per(energy: float | None, tokens: int | None) -> float | None:
    """energy / tokens, or None when either is missing or there are no tokens."""
    if energy is None or not tokens:
        return None
    return energy / tokens


def _uncertainty_pct(w: WindowEnergy) -> float | None:
    """The adjusted uncertainty in % of the adjusted energy (raw ones when not adjusted)."""
    if w.adjusted_uncertainty_j is not None:
        return w.adjusted_uncertainty_j / abs(w.adjusted_energy_j) * 100.0 if w.adjusted_energy_j else None
    if w.uncertainty_j is not None and w.energy_j:
        return w.uncertainty_j / abs(w.energy_j) * 100.0
    return None


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Nested dicts to dotted keys; lists become JSON text so every cell stays hashable."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = json.dumps(value, default=str)
    else:
        out[prefix] = value


def _energy_columns(window: WindowEnergy | None, result: ExperimentResult) -> dict[str, Any]:
    if window is None:
        return {}
    w = window
    out_tokens = w.output_tokens if w.output_tokens is not None else result.output_tokens
    in_tokens = w.input_tokens if w.input_tokens is not None else result.input_tokens
    total = (out_tokens + in_tokens) if out_tokens is not None and in_tokens is not None else result.total_tokens
    throttle = dict(w.throttle_s)
    if not throttle:
        for device in w.devices:
            for cause, seconds in device.throttle_s.items():
                throttle[cause] = throttle.get(cause, 0.0) + seconds
    row: dict[str, Any] = {
        "energy_source": w.source, "window_duration_s": w.duration_s, "energy_j": w.energy_j,
        "energy_adjusted_j": w.adjusted_energy_j, "counter_energy_j": w.counter_energy_j,
        "integral_energy_j": w.integral_energy_j, "disagreement_pct": w.disagreement_pct,
        "edge_corrected": w.edge_corrected, "edge_method": w.edge_method, "uncertainty_j": w.uncertainty_j,
        "adjusted_uncertainty_j": w.adjusted_uncertainty_j, "uncertainty_pct": _uncertainty_pct(w),
        "uncertain": w.uncertain, "host_bound": w.host_bound,
        **{f"uncertainty_{name}_j": value for name, value in w.uncertainty_parts_j.items()},
        "energy_per_output_token_j": w.energy_per_output_token_j if w.energy_per_output_token_j is not None else _per(w.energy_j, out_tokens),
        "energy_per_token_j": w.energy_per_token_j if w.energy_per_token_j is not None else _per(w.energy_j, total),
        "adjusted_energy_per_output_token_j": w.adjusted_energy_per_output_token_j
        if w.adjusted_energy_per_output_token_j is not None else _per(w.adjusted_energy_j, out_tokens),
        "adjusted_energy_per_token_j": w.adjusted_energy_per_token_j
        if w.adjusted_energy_per_token_j is not None else _per(w.adjusted_energy_j, total),
        "mean_power_w": w.mean_power_w, "peak_power_w": w.peak_power_w, "n_samples": w.n_samples,
        "sample_hz": w.sample_hz, "n_devices": len(w.devices) or None,
        "mean_utilization_pct": _mean(d.mean_utilization_pct for d in w.devices),
        "max_temperature_c": _max(d.max_temperature_c for d in w.devices),
        "estimated": w.estimated, "simulated": w.simulated, "throttled": w.throttled,
        "short_window": "short_window" in w.flags, "throttle_s": _sum(throttle.values()),
        "power_capped_share": w.power_capped_share,
        "flags": ",".join(w.flags), "baseline_power_w": w.baseline_power_w,
    }
    row.update({f"throttle_{cause}_s": seconds for cause, seconds in sorted(throttle.items())})
    device_peak = _max(d.peak_memory_mb for d in w.devices)
    if device_peak is not None:
        row["peak_memory_mb"] = device_peak
    return row


def result_row(result: ExperimentResult, run_dir: Path | None = None, source: Path | None = None) -> dict[str, Any]:
    """One flat row for one result; see CORE_COLUMNS for the names."""
    cfg = result.config
    row: dict[str, Any] = {
        "campaign": result.campaign, "run_id": result.run_id, "experiment_id": result.experiment_id,
        "experiment_index": result.experiment_index, "cycle": result.cycle, "cycles_total": result.cycles_total,
        "item_id": result.item_id, "status": result.status, "error": result.error, "backend": result.backend,
        "model": result.model, "started_at": result.started_at, "ended_at": result.ended_at, "duration_s": result.duration_s,
        "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
        "total_tokens": result.total_tokens, "tokens_per_s": result.tokens_per_s,
        "output_tokens_per_s": result.output_tokens_per_s, "n_windows": len(result.windows) or None,
        "warnings": " | ".join(result.warnings) or None, "timeseries_path": result.timeseries_path,
        "run_dir": str(run_dir) if run_dir is not None else None,
        "source_file": str(source) if source is not None else None,
    }
    row.update(_energy_columns(result.energy or (result.windows[0] if result.windows else None), result))
    if result.peak_memory_mb is not None:  # the engine's own peak beats the device-wide figure
        row["peak_memory_mb"] = result.peak_memory_mb
    if result.latency is not None:
        lat = result.latency
        row.update(latency_mode=lat.mode, batch_latency_s_mean=lat.batch_latency_s_mean, ttft_ms_mean=lat.ttft_ms_mean,
                   ttft_ms_p95=lat.ttft_ms_p95, itl_ms_mean=lat.itl_ms_mean, itl_ms_p95=lat.itl_ms_p95)
    if result.warmup is not None:
        row.update(warmup_converged=result.warmup.converged, warmup_iterations=result.warmup.iterations,
                   warmup_final_cv=result.warmup.final_cv, warmup_outcome=result.warmup.outcome,
                   warmup_s=result.warmup.duration_s)
    if result.baseline is not None:
        row["baseline_method"] = result.baseline.method
        if row.get("baseline_power_w") is None:
            row["baseline_power_w"] = _sum(result.baseline.power_w.values())
        if result.baseline.deep_idle_w:
            row["baseline_deep_idle_w"] = _sum(result.baseline.deep_idle_w.values())
    if result.gap is not None:
        row.update(gap_kind=result.gap.kind, gap_waited_s=result.gap.waited_s)
    if result.load is not None:
        row.update(load_cold=result.load.cold, load_time_s=result.load.load_time_s, load_status=result.load.status)
    row.update(phase_columns(result))
    row.update(footprint_columns(result.footprint))
    _flatten("config", cfg, row)
    return row


def _is_run_dir(path: Path) -> bool:
    return RunDirectory(path).experiments_dir.is_dir()


def find_result_files(path: Path) -> Iterator[tuple[Path, Path | None]]:
    """(result file, its run directory) for a file, a run dir, a folder of results or a parent of run dirs."""
    path = Path(path)
    if path.is_file():
        run_dir = path.parent.parent if path.parent.name == EXPERIMENTS_DIR else None
        yield path, run_dir
    elif _is_run_dir(path):
        for file in RunDirectory(path).result_files():
            yield file, path
    elif path.is_dir():
        direct = sorted(path.glob("*.json"))
        run_dir = path.parent if path.name == EXPERIMENTS_DIR else None
        for file in direct:
            yield file, run_dir
        if not direct:
            for experiments in sorted(path.rglob(EXPERIMENTS_DIR)):
                if experiments.is_dir():
                    yield from find_result_files(experiments.parent)
    else:
        raise FileNotFoundError(f"no such results path: {path}")


def frame_from_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Typed DataFrame from result rows: floats with NaN, nullable flags, text, config.* last."""
    df = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    extra = sorted(c for c in df.columns if c not in CORE_COLUMNS and not c.startswith("config."))
    config_cols = sorted(c for c in df.columns if c.startswith("config."))
    df = df.reindex(columns=[*CORE_COLUMNS, *extra, *config_cols])
    for col in df.columns:
        if col in FLAG_COLUMNS:
            df[col] = df[col].astype("boolean")
        elif col in INT_COLUMNS:
            df[col] = df[col].astype("int64")
        elif col in TEXT_COLUMNS:
            df[col] = df[col].astype(object).where(df[col].notna(), None)
        elif not col.startswith("config."):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return df


def run_rows(run_dir: RunDirectory) -> list[dict[str, Any]]:
    """The rows of every valid result of ``run_dir``, sorted by experiment and cycle; each computed once
    per version of its file (``run_dir.rows``)."""
    rows = []
    for file in run_dir.result_files():
        row = run_dir.rows.get(file)
        if row is None:
            result = load_result_file(file)
            if result is None:
                continue
            row = result_row(result)
            run_dir.rows.put(file, row)
        rows.append({**row, "run_dir": None, "source_file": None})
    return sorted(rows, key=lambda r: (r["experiment_id"], r["cycle"]))


def load(path: str | Path | Iterable[str | Path], level: str = "experiment", rows: RowCache | None = None) -> pd.DataFrame:
    """Load results into one row per (experiment, cycle), or with ``level="request"`` one row per
    request (the attribution tables); ``df.attrs["skipped"]`` lists unreadable files. ``rows``: rows
    already computed for these files (reused while a file is unchanged; new ones are added)."""
    if level not in ("experiment", "request"):
        raise ValueError(f"level must be 'experiment' or 'request', not {level!r}")
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    table: list[dict[str, Any]] = []
    found: list[tuple[ExperimentResult, Path | None]] = []
    skipped: list[str] = []
    seen: set[tuple[str, str, int]] = set()
    for root in paths:
        for file, run_dir in find_result_files(Path(root)):
            known = rows.get(file) if rows is not None and level == "experiment" else None
            if known is not None:
                key = (known["run_id"], known["experiment_id"], known["cycle"])
                if key not in seen:
                    seen.add(key)
                    table.append({**known, "run_dir": str(run_dir) if run_dir is not None else None,
                                  "source_file": str(file)})
                continue
            result = load_result_file(file)
            if result is None:
                skipped.append(str(file))
                continue
            key = (result.run_id, result.experiment_id, result.cycle)
            if key in seen:
                continue
            seen.add(key)
            found.append((result, run_dir))
            table.append(result_row(result, run_dir, file))
            if rows is not None:
                rows.put(file, table[-1])
    if level == "request":
        df = request_frame(found)
        df.attrs["skipped"] = skipped
        return df
    df = frame_from_rows(table)
    if len(df):
        df = df.sort_values(["experiment_id", "run_id", "cycle"], kind="stable").reset_index(drop=True)
    df.attrs["skipped"] = skipped
    return df
