"""PNG charts: per-item power timelines and campaign charts with CI error bars.

matplotlib is imported here only, lazily, through its object API with the Agg canvas (no pyplot,
no global state, no display). Timelines are drawn for the first passed cycle of each experiment,
at most ``MAX_TIMELINES`` of them; campaign charts show at most ``MAX_BARS`` experiments (the
lowest and highest means when there are more), so plotting stays fast for large campaigns.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pytest_llenergy.results.metrics import metric_label
from pytest_llenergy.results.phase_plots import phase_spans, request_table, shade_phases
from pytest_llenergy.results.store import metric_plot, save_png, timeline_plot
from pytest_llenergy.results.summary import Summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_TIMELINES = 12
MAX_BARS = 40
DPI = 96
_WINDOW_GAP_FRACTION = 0.05


def _figure(width: float, height: float, *, left_in: float = 0.75) -> Figure:
    """An Agg figure with fixed margins (inches): no layout engine, so one draw per save."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left_in / width, right=1 - 0.2 / width, bottom=0.55 / height, top=1 - 0.45 / height)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    return save_png(fig, Path(path))


def _windows(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Samples split by measured window (``window_index`` or ``window``), in recording order."""
    if "window_index" in frame:
        return [(str(part["window"].iloc[0]) if "window" in part else f"window {i}", part)
                for i, part in frame.groupby("window_index", sort=True)]
    if "window" in frame:
        return [(str(name), part) for name, part in frame.groupby("window", sort=False)]
    return [("window", frame)]


def plot_power_timeline(parquet: Path, out: Path, *, title: str | None = None,
                        durations: dict[str, float] | None = None,
                        baseline_w: float | dict[str, float] | None = None,
                        phases: dict[str, list[tuple[float, float]]] | None = None) -> Path:
    """Power per device over time from a time-series Parquet (t_s, device, power_w, window).

    Windows recorded one after another are laid side by side; each measured span (``durations`` by
    window name, key "" for the first window; else the span of its samples) is shaded; the baseline is a dashed line.
    """
    frame = pd.read_parquet(parquet)
    fig = _figure(8, 3.2)
    ax = fig.add_subplot()
    offset, spans = 0.0, []
    colors: dict[str, Any] = {}
    durations = durations or {}
    for k, (name, part) in enumerate(_windows(frame)):
        t = part["t_s"].to_numpy(dtype=float)
        if not t.size:
            continue
        start = 0.0 if t.min() <= 0 <= t.max() else float(t.min())
        end = float(durations.get(name, durations.get("", t.max()) if k == 0 else t.max()))  # "": the first window
        spans.append((offset + start, offset + end, name))
        for device, rows in part.groupby("device", sort=True):
            label = None if device in colors else str(device)
            line = ax.plot(offset + rows["t_s"], rows["power_w"], lw=1.1, label=label, color=colors.get(device))[0]
            colors.setdefault(device, line.get_color())
        offset += float(t.max()) + _WINDOW_GAP_FRACTION * max(float(t.max() - t.min()), 1e-9)
    for i, (a, b, name) in enumerate(spans):
        ax.axvspan(a, b, color="tab:orange", alpha=0.12, lw=0, label="measured window" if i == 0 else None)
        if len(spans) > 1:
            ax.text((a + b) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    if phases:
        shade_phases(ax, phases)  # the first window's engine-stamped prefill/decode spans
    baselines = baseline_w if isinstance(baseline_w, dict) else ({"baseline": baseline_w} if baseline_w else {})
    for i, (device, watts) in enumerate(baselines.items()):
        ax.axhline(watts, ls="--", lw=1, color=colors.get(device, "0.3"), label="baseline" if i == 0 else None)
    ax.set_xlabel("time in window [s]")
    ax.set_ylabel("power [W]")
    ax.set_title(title or Path(parquet).stem, fontsize=10, pad=14 if len(spans) > 1 else 6)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper right")
    return _save(fig, out)


def _pick(table: pd.DataFrame, metric: str, limit: int) -> tuple[pd.DataFrame, str | None]:
    rows = table[table[f"{metric}_mean"].notna()].sort_values(f"{metric}_mean", kind="stable")
    if len(rows) <= limit:
        return rows, None
    half = limit // 2
    note = f"showing the {half} lowest and {limit - half} highest of {len(rows)}"
    return pd.concat([rows.head(half), rows.tail(limit - half)]), note


def plot_metric_ci(table: pd.DataFrame, metric: str, label_col: str, out: Path, *, title: str) -> Path | None:
    """Horizontal points with CI error bars, one row per experiment or group; None when nothing to show."""
    if f"{metric}_mean" not in table:
        return None
    rows, note = _pick(table, metric, MAX_BARS)
    if not len(rows):
        return None
    mean = rows[f"{metric}_mean"].to_numpy(dtype=float)
    low = np.where(np.isnan(rows[f"{metric}_ci_low"].to_numpy(dtype=float)), mean, rows[f"{metric}_ci_low"])
    high = np.where(np.isnan(rows[f"{metric}_ci_high"].to_numpy(dtype=float)), mean, rows[f"{metric}_ci_high"])
    labels = [_short(str(v)) for v in rows[label_col]]
    fig = _figure(8, 1.2 + 0.28 * len(rows), left_in=0.3 + 0.065 * max(len(t) for t in labels))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    ax.errorbar(mean, y, xerr=[mean - low, high - mean], fmt="o", ms=4, capsize=3, color="tab:blue")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(metric_label(metric))
    ax.set_title(title + (f" ({note})" if note else ""), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, out)


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def campaign_charts(summary: Summary, out_dir: Path) -> dict[str, Path]:
    """Main energy metric and tokens/s with CIs, by experiment and by group: name -> PNG path."""
    charts: dict[str, Path] = {}
    metrics = [m for m in (summary.main_metric, "tokens_per_s") if m]
    levels: list[tuple[str, pd.DataFrame | None, str]] = [("experiment", summary.experiments, "experiment_id"),
                                                          ("group", summary.groups, "group")]
    for metric in dict.fromkeys(metrics):
        for level, table, label_col in levels:
            if table is None or not len(table):
                continue
            path = plot_metric_ci(table, metric, label_col, Path(out_dir) / metric_plot(metric, level),
                                  title=f"{metric_label(metric)} by {level} (mean, {summary.confidence:.0%} CI)")
            if path is not None:
                charts[f"{metric} by {level}"] = path
    return charts


def _resolve(row: pd.Series) -> Path | None:
    raw = row.get("timeseries_path")
    if not isinstance(raw, str) or not raw:
        return None
    path = Path(raw)
    if not path.is_absolute() and isinstance(row.get("run_dir"), str):
        path = Path(row["run_dir"]) / path
    return path if path.is_file() else None


def timeline_charts(df: pd.DataFrame, out_dir: Path, *,
                    limit: int = MAX_TIMELINES) -> tuple[dict[str, Path], list[str]]:
    """Power timelines of the first passed cycle of each experiment with a time series (at most ``limit``).

    Returns name -> PNG path, and one line per time series that could not be drawn.
    """
    charts: dict[str, Path] = {}
    problems: list[str] = []
    if not len(df) or "timeseries_path" not in df:
        return charts, problems
    firsts = df[(df["status"] == "passed") & df["timeseries_path"].notna()].sort_values(["experiment_id", "cycle"])
    for _, row in firsts.drop_duplicates("experiment_id").head(limit).iterrows():
        name = f"{row['experiment_id']} (cycle {row['cycle']})"
        path = _resolve(row)
        if path is None:
            problems.append(f"{name}: time series {row['timeseries_path']} not found")
            continue
        duration, baseline = row.get("window_duration_s"), row.get("baseline_power_w")
        out = Path(out_dir) / timeline_plot(row["experiment_id"], row["cycle"])
        try:
            charts[name] = plot_power_timeline(
                path, out, title=name, durations=None if _missing(duration) else {"": float(duration)},
                baseline_w=None if _missing(baseline) else float(baseline), phases=phase_spans(request_table(row)))
        except (OSError, ValueError, KeyError) as exc:  # a broken series must not stop the report
            problems.append(f"{name}: {exc}")
    return charts, problems


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
