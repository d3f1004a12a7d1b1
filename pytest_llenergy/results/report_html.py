"""``report.html``: one self-contained page (inline CSS, base64 PNGs, no scripts, no external resources).

``build_report`` writes it; ``report.build_outputs`` calls it after the statistics and charts.

Everything that comes from results, configs or the environment is HTML-escaped.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_llenergy.results.first_cycle import CONFIDENCE
from pytest_llenergy.results.metrics import METRIC_SHORT, metric_label
from pytest_llenergy.results.store import REPORT_FILE, RunDirectory, atomic_write_bytes
from pytest_llenergy.results.summary import Summary
from pytest_llenergy.results.terminal import flag_words, method_text

LEGEND = ('<p class="sub">flags: est = estimated, sim = simulated, thr = cycles throttled (thermal, board limit or reliability), '
          "short = cycles with a short measurement window. CI (method coverage): t = Student's t (below 10 cycles), "
          "BCa = bootstrap; coverage = how often such an interval holds the true mean at this n, simulated for "
          "skewed (lognormal) to normal cycle values (docs/statistics.md).</p>")
GROUP_NOTE = ('<p class="sub">Mean of all cycle-level values of the group\'s experiments; the CI comes from a '
              "bootstrap stratified by experiment (cycles resampled within each experiment).</p>")
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
main{max-width:1440px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d9dde5;padding-bottom:4px}
.sub{color:#5b6475;margin:0 0 16px}
.banner{padding:12px 16px;border-radius:6px;margin:12px 0;font-weight:600}
.banner.sim{background:#fde8e8;border:2px solid #c0392b;color:#7b1d14}
.banner.est{background:#fff4d6;border:2px solid #d68a00;color:#6b4500}
table{border-collapse:collapse;background:#fff;font-size:13px;margin:4px 0 8px}
th,td{border:1px solid #e1e4ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}.kv td:first-child{color:#5b6475;white-space:nowrap}
img{max-width:100%;height:auto;background:#fff;border:1px solid #e1e4ea;margin:6px 0}
.warn{color:#8a4b00}td.warn{min-width:240px}td.id{white-space:nowrap;font-family:ui-monospace,Menlo,monospace;font-size:12px}.flag{display:inline-block;padding:0 6px;border-radius:8px;background:#eef1f6;margin-right:3px}
.kv td.num{text-align:left}footer{color:#8a93a3;font-size:12px;margin-top:32px}
"""


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any) -> str:
    """A table cell: integers as they are, floats with 4 significant digits, text escaped, missing as a dash."""
    if _missing(value):
        return '<td class="num">–</td>'
    if isinstance(value, (bool, np.bool_)):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, (int, np.integer)):
        return f'<td class="num">{int(value)}</td>'
    if isinstance(value, (float, np.floating)):
        return f'<td class="num">{escape(f"{value:.4g}")}</td>'
    return f"<td>{escape(str(value))}</td>"


def _table(head: list[str], rows: Iterable[list[str]], cls: str = "") -> str:
    header = f"<thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in head)}</tr></thead>" if head else ""
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return f'<div class="scroll"><table class="{cls}">{header}<tbody>{body}</tbody></table></div>'


def _kv(pairs: Iterable[tuple[str, Any]]) -> str:
    return _table([], ([f"<td>{escape(str(k))}</td>", _cell(v)] for k, v in pairs), cls="kv")


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, item in enumerate(value):
            _flatten(f"{prefix}[{i}]", item, out)
    else:
        out.append((prefix, ", ".join(map(str, value)) if isinstance(value, list) else value))


def _environment(run_dirs: list[Path]) -> str:
    for run_dir in run_dirs:
        path = RunDirectory(run_dir).environment_path
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                return f'<p class="warn">{escape(str(path))} is unreadable: {escape(str(exc))}</p>'
            pairs: list[tuple[str, Any]] = []
            _flatten("", data, pairs)
            return f"<p class=\"sub\">{escape(str(path))}</p>" + _kv(pairs)
    return "<p class=\"sub\">No environment.json in the run directory.</p>"


def _ci_text(row: pd.Series, metric: str) -> str | None:
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if _missing(low) or _missing(high):
        return None
    method = method_text(row, metric)
    return f"[{low:.4g}, {high:.4g}]" + ("" if method == "-" else f" ({method})")


def _warning_text(row: pd.Series, metrics: list[str]) -> str:
    """Warnings of the shown metrics: once when they all agree, else prefixed with the metric."""
    found = {m: row.get(f"{m}_warning") for m in metrics}
    found = {m: w for m, w in found.items() if isinstance(w, str)}
    if len(set(found.values())) == 1 and len(found) == len(metrics):
        return next(iter(found.values()))
    return "; ".join(f"{METRIC_SHORT.get(m, m)}: {w}" for m, w in found.items())


def _stats_rows(frame: pd.DataFrame, label_col: str, metrics: list[str], extra: list[str]) -> list[list[str]]:
    rows = []
    for _, row in frame.iterrows():
        n = row.get(f"{metrics[0]}_n") if metrics else None
        cells = [f'<td class="id">{escape(str(row.get(label_col)))}</td>', *[_cell(row.get(c)) for c in extra],
                 _cell(None if n is None or _missing(n) else int(n))]
        for metric in metrics:
            ci = _ci_text(row, metric)
            cells += [_cell(row.get(f"{metric}_mean")), f'<td class="num">{escape(ci)}</td>' if ci else _cell(None)]
        flags = flag_words(row) if label_col == "experiment_id" else ""
        cells += [f"<td>{''.join(f'<span class=flag>{escape(f)}</span>' for f in flags.split(',') if f)}</td>",
                  f'<td class="warn">{escape(_warning_text(row, metrics))}</td>']
        rows.append(cells)
    return rows


def _stats_table(frame: pd.DataFrame | None, label_col: str, metrics: list[str], extra: list[str], confidence: float) -> str:
    """Mean and CI per metric, one row per experiment or group, sorted by the first metric."""
    if frame is None or not len(frame):
        return '<p class="sub">None.</p>'
    metrics = [m for m in metrics if f"{m}_mean" in frame and frame[f"{m}_mean"].notna().any()]
    head = [label_col.removesuffix("_id"), *[c.rsplit(".", 1)[-1].replace("_", " ") for c in extra], "n"]
    for metric in metrics:
        head += [METRIC_SHORT.get(metric, metric), f"{confidence:.0%} CI"]
    ordered = frame.sort_values(f"{metrics[0]}_mean", na_position="last", kind="stable") if metrics else frame
    return _table([*head, "flags", "warnings"], _stats_rows(ordered, label_col, metrics, extra))


def _image(title: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{escape(title)}" title="{escape(title)}" src="data:image/png;base64,{data}">'


def _banners(summary: Summary) -> str:
    table = summary.experiments
    out = []
    if "simulated" in table and table["simulated"].any():
        out.append('<div class="banner sim">SIMULATED: energy comes from a replayed power trace, not from this '
                   "machine's hardware. Use these figures to test the pipeline, never as measurements.</div>")
    if not summary.header.get("energy_sources"):
        out.append('<div class="banner est">NO ENERGY: no measured window in these results; only speed and '
                   "latency figures are shown.</div>")
    if "estimated" in table and table["estimated"].any():
        out.append('<div class="banner est">ESTIMATED: no hardware energy counter was available; figures come '
                   "from a model and are approximate.</div>")
    return "".join(out)


def _run_table(summary: Summary, run_dirs: list[Path]) -> str:
    h = summary.header
    main = summary.main_metric
    table = summary.experiments
    return _kv([
        ("campaign", ", ".join(map(str, h.get("campaigns", []))) or "–"),
        ("run id", ", ".join(map(str, h.get("run_ids", []))) or "–"),
        ("seed (statistics)", summary.seed),
        ("energy source", ", ".join(map(str, h.get("energy_sources", []))) or "none"),
        ("estimated", "yes" if "estimated" in table and table["estimated"].any() else "no"),
        ("simulated", "yes" if "simulated" in table and table["simulated"].any() else "no"),
        ("cycles configured", h.get("cycles_configured")), ("items", h.get("items")), ("experiments", len(table)),
        ("main metric", metric_label(main) if main else None),
        ("interval", summary.method),
        ("created", h.get("created_at")), ("sources", ", ".join(map(str, run_dirs))),
    ])


def build_report(run_dir: Path | list[Path], summary: Summary, *, charts: dict[str, Path] | None = None,
                 timelines: dict[str, Path] | None = None, problems: list[str] | None = None,
                 out: Path | None = None, descriptions: list[str] | None = None) -> Path:
    """Write ``report.html`` (into ``out``, default ``run_dir``/report.html) and return its path.

    ``descriptions``: the campaigns' ``description`` texts, shown under the title."""
    run_dirs = [Path(p) for p in (run_dir if isinstance(run_dir, list) else [run_dir])]
    out = Path(out) if out is not None else run_dirs[0] / REPORT_FILE
    campaign = ", ".join(map(str, summary.header.get("campaigns", []))) or "results"
    run_ids = ", ".join(map(str, summary.header.get("run_ids", [])))
    metrics = [m for m in dict.fromkeys((summary.main_metric, "energy_per_output_token_j", "tokens_per_s"))
               if m and m in summary.metrics]
    parts = [f"<h1>llenergy report: {escape(campaign)}</h1>", f'<p class="sub">run {escape(run_ids)}</p>',
             *(f'<p class="description">{escape(text)}</p>' for text in descriptions or ()),
             _banners(summary), "<h2>Run</h2>", _run_table(summary, run_dirs),
             "<h2>Flags</h2>", _kv(summary.flag_counts().items()), "<h2>Experiments</h2>",
             _stats_table(summary.experiments, "experiment_id", metrics, ["backend", "model", "config.precision", "config.workload.batch_size"],
                          summary.confidence), LEGEND]
    if summary.search is not None:  # the search's answer, with its own plot
        from pytest_llenergy.results.search_report import search_html

        searched = {t: p for t, p in (charts or {}).items() if t.startswith("search:")}
        charts = {t: p for t, p in (charts or {}).items() if t not in searched}
        parts += search_html(summary.search, [_image(t, p) for t, p in searched.items()])
    wide = summary.experiments[summary.experiments["ci_wide"].fillna(False).astype(bool)] \
        if "ci_wide" in summary.experiments else summary.experiments.iloc[:0]
    if len(wide):
        parts += ["<h2>Why some CIs are wide (> ±3 %)</h2>",
                  "<ul>" + "".join(f"<li>{escape(str(r['experiment_id']))}: {escape(str(r['ci_width_note']))}</li>"
                                   for _, r in wide.iterrows()) + "</ul>"]
    cold = summary.experiments[summary.experiments["first_cycle_outlier"].fillna(False).astype(bool)] \
        if "first_cycle_outlier" in summary.experiments else summary.experiments.iloc[:0]
    if len(cold):
        parts += ["<h2>First cycles unlike the later ones</h2>",
                  f"<p>Outside the later cycles' {CONFIDENCE:.0%} prediction interval: a warm state not reached "
                  "before measuring? "
                  "The value is in the mean and CI (docs/statistics.md).</p>",
                  "<ul>" + "".join(f"<li>{escape(str(r['experiment_id']))}: first cycle at "
                                   f"{escape(str(r['first_cycle_note']))} the later cycles' mean</li>"
                                   for _, r in cold.iterrows()) + "</ul>"]
    if summary.groups is not None:
        parts += [f"<h2>Groups by {escape(', '.join(summary.group_by))}</h2>", GROUP_NOTE,
                  _stats_table(summary.groups, "group", metrics, [], summary.confidence)]
    if charts:
        parts += ["<h2>Charts</h2>", *(_image(t, p) for t, p in charts.items())]
    if timelines:
        parts += ["<h2>Power timelines (first cycle of each experiment)</h2>", *(_image(t, p) for t, p in timelines.items())]
    notes = [*(problems or []), *(f"unreadable result file: {f}" for f in summary.skipped)]
    if notes:
        parts += ["<h2>Problems</h2>", "<ul>" + "".join(f'<li class="warn">{escape(n)}</li>' for n in notes) + "</ul>"]
    parts += ["<h2>Environment</h2>", _environment(run_dirs),
              "<footer>Written by pytest-llenergy. Statistics: summary.json, summary.csv.</footer>"]
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(campaign)}: llenergy report</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">'
            f"<style>{CSS}</style></head><body><main>{''.join(parts)}</main></body></html>\n")
    atomic_write_bytes(out, page.encode("utf-8"))
    return out
