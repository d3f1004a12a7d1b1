"""Phase overlays for power timelines and per-request energy histograms (from request tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from pytest_llenergy.results.store import requests_plot, save_png

#: (phase, colour) for the shaded spans on a timeline
PHASE_COLOURS = (("prefill", "tab:purple"), ("decode", "tab:green"))
MAX_HISTOGRAMS = 12


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def request_table(row: pd.Series) -> pd.DataFrame | None:
    """The request table of one result row, or None."""
    raw, run_dir = row.get("requests_path"), row.get("run_dir")
    if not isinstance(raw, str) or not isinstance(run_dir, str):
        return None
    path = Path(run_dir) / raw
    return pd.read_parquet(path) if path.is_file() else None


def phase_spans(requests: pd.DataFrame | None) -> dict[str, list[tuple[float, float]]]:
    """Window-time spans during which at least one request was in prefill / decode."""
    if requests is None or not len(requests):
        return {}
    pre = list(zip(requests["start_s"].astype(float), requests["first_token_s"].astype(float)))
    dec = list(zip(requests["first_token_s"].astype(float), requests["end_s"].astype(float)))
    return {"prefill": _merge(pre), "decode": _merge(dec)}


def shade_phases(ax: Any, spans: dict[str, list[tuple[float, float]]]) -> None:
    """Shade each phase's spans and mark prefill starts with thin lines (the boundaries)."""
    for phase, colour in PHASE_COLOURS:
        for i, (a, b) in enumerate(spans.get(phase, [])):
            ax.axvspan(a, b, color=colour, alpha=0.18, lw=0, label=phase if i == 0 else None)
    for a, _ in spans.get("prefill", []):
        ax.axvline(a, color="tab:purple", lw=0.6, alpha=0.6)


def request_histograms(df: pd.DataFrame, out_dir: Path, limit: int = MAX_HISTOGRAMS) -> dict[str, Path]:
    """A histogram of attributed energy per request for the first passed cycle of each experiment."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    charts: dict[str, Path] = {}
    if not len(df) or "requests_path" not in df:
        return charts
    firsts = df[(df["status"] == "passed") & df["requests_path"].notna()].sort_values(["experiment_id", "cycle"])
    for _, row in firsts.drop_duplicates("experiment_id").head(limit).iterrows():
        table = request_table(row)
        if table is None or not len(table):
            continue
        fig = Figure(figsize=(6, 2.8), dpi=96)
        FigureCanvasAgg(fig)
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.2, top=0.85)
        ax = fig.add_subplot()
        ax.hist(table["energy_j"].astype(float), bins=min(30, max(5, len(table) // 3)), color="tab:blue", alpha=0.8)
        ax.set_xlabel("attributed energy per request [J] (attribution by token work)")
        ax.set_ylabel("requests")
        name = f"per-request energy: {row['experiment_id']} (cycle {row['cycle']}, {len(table)} requests)"
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        charts[name] = save_png(fig, Path(out_dir) / requests_plot(row["experiment_id"], row["cycle"]))
    return charts
