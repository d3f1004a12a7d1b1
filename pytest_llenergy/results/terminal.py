"""The session-end terminal table: experiments sorted by the main energy metric, with CIs and flags.

Verbosity: ``-q`` (< 0) shows the best ``QUIET_ROWS`` experiments; default shows up to
``DEFAULT_ROWS``; ``-v`` (> 0) shows every experiment and adds detail columns.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from pytest_llenergy.results.coverage import T_BELOW, coverage_text
from pytest_llenergy.results.first_cycle import first_cycle_lines
from pytest_llenergy.results.metrics import METRIC_LABELS
from pytest_llenergy.results.summary import Summary
from pytest_llenergy.results.width import WIDE_TARGET

QUIET_ROWS = 5
DEFAULT_ROWS = 50
FLAG_WORDS = {"estimated": "est", "simulated": "sim", "throttled": "thr", "short_window": "short"}
_DETAIL = (("energy_per_output_token_j", "J/out raw"), ("energy_j", "J raw"), ("mean_power_w", "W"),
           ("ttft_ms_mean", "TTFT ms"), ("itl_ms_mean", "ITL ms"))


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    return f"{float(value):.4g}"


def _ci(row: pd.Series, metric: str) -> str:
    low, high, mean = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high"), row.get(f"{metric}_mean")
    if low is None or pd.isna(low) or pd.isna(high):
        return "no CI"
    half = (high - low) / 2
    rel = f" ±{half / abs(mean) * 100:.1f}%" if mean else ""
    return f"[{_num(low)}, {_num(high)}]{rel}"


def method_text(row: pd.Series, metric: str) -> str:
    """``t 92-95%``: the interval's method and its simulated coverage at this n (skewed to normal data)."""
    method = row.get(f"{metric}_method")
    if not isinstance(method, str) or method == "none":
        return "-"
    normal, skewed = (row.get(f"{metric}_{k}") for k in ("coverage", "coverage_skewed"))
    cov = coverage_text(float(normal) if normal is not None else math.nan,
                        float(skewed) if skewed is not None else math.nan)
    return method if cov == "-" else f"{method} {cov}"


def flag_words(row: pd.Series) -> str:
    """``est,sim,thr,short`` for an experiment row: estimated, simulated, throttled and short-window cycles."""
    words = [FLAG_WORDS[f] for f in ("estimated", "simulated") if bool(row.get(f))]
    words += [FLAG_WORDS[f] for f in ("throttled", "short_window") if (row.get(f"{f}_cycles") or 0) > 0]
    return ",".join(words)


def _render(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def _table(frame: pd.DataFrame, label_col: str, main: str, verbosity: int) -> list[list[str]]:
    details = [(m, h) for m, h in _DETAIL if verbosity > 0 and m != main and f"{m}_mean" in frame and frame[f"{m}_mean"].notna().any()]
    unit = METRIC_LABELS.get(main, (main, ""))[1]
    head = [label_col.replace("_id", ""), "n", f"mean {unit}".strip(), "95% CI", "method coverage", "tok/s",
            *[h for _, h in details], "flags"]
    rows = [head]
    for _, row in frame.iterrows():
        n = row.get(f"{main}_n")
        rows.append([str(row[label_col]), "-" if pd.isna(n) else str(int(n)), _num(row.get(f"{main}_mean")), _ci(row, main),
                     method_text(row, main), _num(row.get("tokens_per_s_mean")), *[_num(row.get(f"{m}_mean")) for m, _ in details],
                     flag_words(row) if label_col == "experiment_id" else ""])
    return rows


def _few_cycles_warning(table: pd.DataFrame, main: str, cycles_configured: int | None) -> list[str]:
    """A warning for experiments with < 3 passed cycles, and at n <= 3 the cycles their spread needs."""
    if f"{main}_n" not in table:
        return []
    n = table[f"{main}_n"]
    lines = []
    few = table[(n > 0) & (n < 3)]
    if len(few) and cycles_configured != 1:
        names = ", ".join(few["experiment_id"].head(3)) + (", ..." if len(few) > 3 else "")
        lines.append(f"warning: {len(few)} experiment(s) with fewer than 3 passed cycles: CIs missing or unreliable ({names})")
    for _, row in table[(n >= 2) & (n <= 3)].head(DEFAULT_ROWS).iterrows():
        note = next((p for p in str(row.get(f"{main}_warning") or "").split("; ") if "observed spread" in p), None)
        if note:
            lines.append(f"  {row['experiment_id']}: {note}")
    return lines


def _wide_lines(table: pd.DataFrame, main: str, limit: int) -> list[str]:
    """Experiments whose CI is wider than the target: what widens it and the cycles ±3 % / ±5 % need."""
    if "ci_wide" not in table:
        return []
    wide = table[table["ci_wide"].fillna(False).astype(bool)]
    if not len(wide):
        return []
    lines = [f"wide CIs (> ±{WIDE_TARGET:.0%}): what widens them (shares of the cycle-to-cycle variance):"]
    for _, row in wide.head(limit).iterrows():
        half = (row[f"{main}_ci_high"] - row[f"{main}_ci_low"]) / 2 / abs(row[f"{main}_mean"])
        lines.append(f"  {row['experiment_id']}: ±{half:.1%}: {row['ci_width_note']}")
    if len(wide) > limit:
        lines.append(f"  ... {len(wide) - limit} more (summary.csv: ci_width_note)")
    return lines


def format_terminal_table(summary: Summary, verbosity: int = 0, *, cycles_configured: int | None = None) -> list[str]:
    """Lines for the terminal summary; ``cycles_configured`` = 1 (a single-cycle campaign) silences n < 3 warnings."""
    table = summary.experiments
    main = summary.main_metric
    if main is None or not len(table):
        return ["llenergy: no results to summarise"]
    if cycles_configured is None:
        cycles_configured = summary.cycles_configured
    label, unit = METRIC_LABELS.get(main, (main, ""))
    lines = [f"llenergy: {len(table)} experiment(s), sorted by {label.lower()} [{unit}]: mean and "
             f"{summary.confidence:.0%} CI (seed {summary.seed})"]
    if table.get("simulated", pd.Series(dtype=bool)).any():
        lines.append("NOTE: SIMULATED energy (replayed power trace), not a measurement")
    if table.get("estimated", pd.Series(dtype=bool)).any():
        lines.append("NOTE: ESTIMATED energy (no hardware counter): treat figures as approximate")
    ordered = table.sort_values(f"{main}_mean", na_position="last", kind="stable")
    limit = QUIET_ROWS if verbosity < 0 else (len(ordered) if verbosity > 0 else DEFAULT_ROWS)
    rows = _table(ordered.head(limit), "experiment_id", main, verbosity)
    lines += _render(rows, right={1, 2, 5})
    if len(ordered) > limit:
        lines.append(f"... {len(ordered) - limit} more (-v shows all; see summary.csv)")
    if verbosity >= 0 and summary.groups is not None and len(summary.groups):
        groups = summary.groups.sort_values(f"{main}_mean", na_position="last", kind="stable")
        lines.append(f"groups by {', '.join(summary.group_by)} (stratified over cycles):")
        lines += _render(_table(groups, "group", main, verbosity), right={1, 2, 5})
    lines.append(f"method: t = Student's t (below {T_BELOW} cycles), BCa = bootstrap; coverage = how often such an "
                 "interval holds the true mean at this n, simulated for skewed (lognormal) to normal cycle values "
                 "(docs/statistics.md)")
    if any(flag_words(r) for _, r in ordered.head(limit).iterrows()):
        lines.append("flags: est = estimated, sim = simulated, thr = throttled cycles (thermal, board limit or reliability; power capping is not a flag), short = short window cycles")
    return (lines + _wide_lines(ordered, main, limit) + first_cycle_lines(ordered, limit)
            + _few_cycles_warning(table, main, cycles_configured))
