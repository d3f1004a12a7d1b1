"""The summary says what widens each wide CI (duration, power or baseline) and how many cycles ±3 % / ±5 % need."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pytest_llenergy.results.coverage import cycles_needed
from pytest_llenergy.results.stats import summarize
from pytest_llenergy.results.terminal import format_terminal_table
from pytest_llenergy.results.width import variance_shares

METRIC = "adjusted_energy_per_output_token_j"


def cycles(name: str, n: int, *, duration_cv: float, power_sd: float, baseline_sd: float, seed: int,
           power: float = 145.0, uncertainty: float | None = None) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        t = 2.5 * (1 + duration_cv * rng.standard_normal())
        p, b = power + power_sd * rng.standard_normal(), 121.6 + baseline_sd * rng.standard_normal()
        rows.append({"experiment_id": name, "status": "passed", "cycle": k + 1, "window_duration_s": t,
                     "output_tokens": 512, "mean_power_w": p, "baseline_power_w": b, "energy_adjusted_j": (p - b) * t,
                     METRIC: (p - b) * t / 512, "tokens_per_s": 512 / t,
                     "adjusted_uncertainty_j": None if uncertainty is None else uncertainty * (p - b) * t})
    return rows


def test_each_cause_dominates_when_it_is_the_noise():
    frame = pd.DataFrame(cycles("dur", 8, duration_cv=0.10, power_sd=0.05, baseline_sd=0.01, seed=1)
                         + cycles("pow", 8, duration_cv=0.001, power_sd=2.0, baseline_sd=0.01, seed=2)
                         + cycles("base", 8, duration_cv=0.001, power_sd=0.05, baseline_sd=2.0, seed=3))
    table = summarize(frame, metrics=[METRIC, "tokens_per_s"], seed=1).experiments.set_index("experiment_id")
    assert table["ci_wide"].all()
    assert "host-bound" not in table.loc["dur", "ci_width_note"]
    assert table.loc["dur", "ci_width_note"].startswith(("duration variance between cycles 9", "duration variance between cycles 100"))
    assert table.loc["pow", "ci_width_note"].startswith(("power variance between cycles 9", "power variance between cycles 100"))
    assert table.loc["base", "ci_width_note"].startswith(("baseline uncertainty 9", "baseline uncertainty 100"))
    shares = table[["ci_share_duration", "ci_share_power", "ci_share_baseline"]].sum(axis=1)
    assert shares.to_numpy() == pytest.approx(1.0)


def test_cycles_for_three_and_five_percent_follow_the_spread():
    table = summarize(pd.DataFrame(cycles("e", 5, duration_cv=0.1, power_sd=0.5, baseline_sd=0.2, seed=4)),
                      metrics=[METRIC], seed=1).experiments.iloc[0]
    rel = table[f"{METRIC}_sd"] / table[f"{METRIC}_mean"]
    assert table["cycles_for_3pct"] == cycles_needed(rel, 0.03) and table["cycles_for_5pct"] == cycles_needed(rel, 0.05)
    assert f"±3% needs {cycles_needed(rel, 0.03)} cycles, ±5% {cycles_needed(rel, 0.05)}" in table["ci_width_note"]


def test_per_cycle_baseline_uncertainty_counts_as_baseline():
    rows = pd.DataFrame(cycles("e", 6, duration_cv=0.02, power_sd=0.3, baseline_sd=0.01, seed=5))
    without = variance_shares(rows, METRIC)
    with_unc = variance_shares(pd.DataFrame(cycles("e", 6, duration_cv=0.02, power_sd=0.3, baseline_sd=0.01, seed=5,
                                                   uncertainty=0.05)), METRIC)
    assert without["baseline"] < 0.05 and with_unc["baseline"] > 0.5
    # With the budget's parts, only the baseline's parts count (not counter quantisation).
    parts = pd.DataFrame(cycles("e", 6, duration_cv=0.02, power_sd=0.3, baseline_sd=0.01, seed=5, uncertainty=0.05))
    parts["uncertainty_baseline_sd_j"] = 0.0
    parts["uncertainty_baseline_drift_j"] = 0.0
    assert variance_shares(parts, METRIC)["baseline"] == pytest.approx(without["baseline"])


def test_narrow_intervals_get_no_note_and_the_terminal_lists_wide_ones():
    frame = pd.DataFrame(cycles("tight", 12, duration_cv=0.002, power_sd=0.5, baseline_sd=0.01, seed=6, power=420.0)
                         + cycles("wide", 4, duration_cv=0.1, power_sd=0.5, baseline_sd=0.2, seed=7))
    summary = summarize(frame, metrics=[METRIC, "tokens_per_s"], seed=1)
    table = summary.experiments.set_index("experiment_id")
    assert not table.loc["tight", "ci_wide"] and pd.isna(table.loc["tight", "ci_width_note"])
    lines = format_terminal_table(summary)
    start = lines.index("wide CIs (> ±3%): what widens them (shares of the cycle-to-cycle variance):")
    assert lines[start + 1].startswith("  wide: ±") and "duration variance between cycles" in lines[start + 1]
    assert not any(line.startswith("  tight:") for line in lines)


def test_report_html_shows_method_coverage_and_why_wide(tmp_path):
    from pytest_llenergy.results.report_html import build_report

    frame = pd.DataFrame(cycles("wide", 4, duration_cv=0.1, power_sd=0.5, baseline_sd=0.2, seed=7))
    html = build_report(tmp_path, summarize(frame, metrics=[METRIC, "tokens_per_s"], seed=1)).read_text()
    assert "Why some CIs are wide (&gt; ±3 %)" in html or "Why some CIs are wide (> ±3 %)" in html
    assert "wide: duration variance between cycles" in html and "(t 92-95%)" in html


def test_host_bound_cycles_are_named_in_the_note():
    frame = pd.DataFrame(cycles("e", 4, duration_cv=0.1, power_sd=0.5, baseline_sd=0.2, seed=8))
    frame["host_bound"] = True
    note = summarize(frame, metrics=[METRIC], seed=1).experiments.iloc[0]["ci_width_note"]
    assert note.endswith("(host-bound: a GPU-bound decode path steadies the duration)")
