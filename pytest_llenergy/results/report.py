"""Everything a finished run gets (session end, and ``lem report DIR [DIR ...]``): ``build_outputs``.

Loads the results, computes statistics, writes summary.json and summary.csv, the charts under
``plots/`` and report.html (``report_html.build_report``); ``format_terminal_table`` gives the
terminal lines. Several run directories (shards, repeated runs) are merged: an experiment's cycles
from every directory are pooled.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llenergy.results.carbon import CARBON_COLUMNS
from pytest_llenergy.results.export import write_summary_csv, write_summary_json
from pytest_llenergy.results.frame import load
from pytest_llenergy.results.report_html import build_report
from pytest_llenergy.results.stats import DEFAULT_METRICS, summarize
from pytest_llenergy.results.store import (
    PLOTS_DIR,
    REPORT_FILE,
    SUMMARY_CSV,
    SUMMARY_JSON,
    RowCache,
    RunDirectory,
    read_json,
)
from pytest_llenergy.results.summary import Summary
from pytest_llenergy.results.terminal import format_terminal_table
from pytest_llenergy.results.walltime import wall_time_breakdown


def _manifests(run_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    found = (read_json(RunDirectory(run_dir).manifest_path) for run_dir in run_dirs)
    return [data for data in found if data is not None]


def manifest_seed(run_dirs: Sequence[Path]) -> int | None:
    """The campaign seed recorded in the first readable ``manifest.json``."""
    for manifest in _manifests(run_dirs):
        seed = manifest.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool):
            return seed
    return None


def manifest_descriptions(run_dirs: Sequence[Path]) -> list[str]:
    """The campaigns' descriptions recorded in the manifests (each once, empty ones left out)."""
    texts = [str(d.get("description") or "").strip() for d in _manifests(run_dirs)]
    return list(dict.fromkeys(t for t in texts if t))


def manifest_group_by(run_dirs: Sequence[Path]) -> list[str] | None:
    """The run's ``group_by`` recorded in the first ``manifest.json`` that has one."""
    for manifest in _manifests(run_dirs):
        group_by = manifest.get("group_by")
        if isinstance(group_by, list):
            return [str(g) for g in group_by]
    return None


def manifest_dropped(run_dirs: Sequence[Path]) -> set[str]:
    """Experiments removed from the campaign before a resume: left out of the summary (files kept)."""
    return {str(e) for m in _manifests(run_dirs) for e in (m.get("dropped") or [])}


def remove_stale_plots(folder: Path, keep: set[Path]) -> list[Path]:
    """Delete PNGs under ``folder`` that this build did not write (groups or experiments that are gone)."""
    removed = []
    for path in folder.glob("*.png") if folder.is_dir() else ():
        if path.resolve() not in keep:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def build_outputs(run_dir: Path | Sequence[Path], *, out_dir: Path | None = None, group_by: Sequence[str] | None = None,
                  seed: int | None = None, plots: bool = True, n_resamples: int = 10_000, confidence: float = 0.95,
                  metrics: Sequence[str] = DEFAULT_METRICS, cycles_configured: int | None = None,
                  rows: RowCache | None = None) -> Summary:
    """Load, summarise and write summary.json/csv, plots and report.html; returns the Summary.

    ``run_dir`` is one run directory or several (then ``out_dir`` is required). ``seed`` defaults to
    the campaign seed in ``manifest.json``; ``cycles_configured`` (the campaign's cycles) overrides
    the figure read from the results; ``rows``: rows already computed for the result files (``load``);
    ``summary.outputs`` lists the files written.
    """
    run_dirs = [Path(run_dir)] if isinstance(run_dir, (str, Path)) else [Path(p) for p in run_dir]
    if not run_dirs:
        raise ValueError("build_outputs needs at least one run directory")
    if out_dir is None:
        if len(run_dirs) > 1:
            raise ValueError("out_dir is required when merging several run directories")
        out_dir = run_dirs[0]
    out_dir = Path(out_dir)
    if seed is None:
        seed = manifest_seed(run_dirs)
    if group_by is None:
        group_by = manifest_group_by(run_dirs)
    df = load(run_dirs, rows=rows)
    metrics = [*metrics, *(c for c in CARBON_COLUMNS if c in df.columns and df[c].notna().any() and c not in metrics)]
    dropped = manifest_dropped(run_dirs)
    if dropped and len(df):
        df = df[~df["experiment_id"].isin(dropped)]
    if not len(df):
        raise ValueError(f"no results in {', '.join(map(str, run_dirs))} (no experiments/*.json to summarise)")
    summary = summarize(df, metrics=metrics, group_by=group_by, seed=seed, n_resamples=n_resamples,
                        confidence=confidence)
    if cycles_configured is not None:
        summary.header["cycles_configured"] = cycles_configured
    summary.header["wall_time"] = wall_time_breakdown(run_dirs)
    from pytest_llenergy.results.search_report import search_answer

    summary.search = search_answer(run_dirs)
    outputs = {SUMMARY_JSON: write_summary_json(out_dir / SUMMARY_JSON, summary, run_dirs=run_dirs),
               SUMMARY_CSV: write_summary_csv(out_dir / SUMMARY_CSV, summary)}
    charts: dict[str, Path] = {}
    timelines: dict[str, Path] = {}
    problems: list[str] = []
    if plots and len(df):
        from pytest_llenergy.results.plots import campaign_charts, timeline_charts

        charts = campaign_charts(summary, out_dir / PLOTS_DIR)
        timelines, problems = timeline_charts(df, out_dir / PLOTS_DIR)
        from pytest_llenergy.results.phase_plots import request_histograms

        charts.update(request_histograms(df, out_dir / PLOTS_DIR))
        if summary.search is not None:
            from pytest_llenergy.results.search_plots import search_charts

            charts.update(search_charts(summary.search, out_dir / PLOTS_DIR))
        outputs.update({f"plot: {name}": path for name, path in {**charts, **timelines}.items()})
    remove_stale_plots(out_dir / PLOTS_DIR, {Path(p).resolve() for p in {**charts, **timelines}.values()})
    outputs[REPORT_FILE] = build_report(run_dirs, summary, charts=charts, timelines=timelines, problems=problems,
                                          out=out_dir / REPORT_FILE, descriptions=manifest_descriptions(run_dirs))
    summary.outputs = {name: str(path) for name, path in outputs.items()}
    return summary


__all__ = ["build_outputs", "build_report", "format_terminal_table", "manifest_seed"]
