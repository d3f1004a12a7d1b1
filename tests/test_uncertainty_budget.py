"""The uncertainty budget end to end: baseline re-checks between items bracket each item's drift."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from campaigns import ENERGY_TEST, fake_nvml_conftest, results, write_suite

TESTS_DIR = Path(__file__).parent

CAMPAIGN = """
name: budget
cycles: 1
defaults: {model: gpt2, workload: {num_prompts: 2, input_tokens: 4, output_tokens: 5}}
grid: {shared: {workload.batch_size: [1, 2], precision: [float32, bfloat16]}}
gaps: {between_experiments: 0, between_cycles: 0}
measurement:
  energy_source: nvml
  sample_hz: 20
  baseline: {duration_s: 0.5, revalidate_every: 0RECHECK}
  warmup: {mode: fixed, iterations: 1}
"""


def run_budget(pytester, recheck: str) -> list[dict]:
    write_suite(pytester, CAMPAIGN.replace("RECHECK", recheck), test=ENERGY_TEST)
    pytester.makeconftest(fake_nvml_conftest(str(TESTS_DIR), 3.0))
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider").assert_outcomes(passed=4)
    return sorted(results(pytester, "budget"), key=lambda r: r["started_at"])  # run order


def test_rechecks_bracket_each_item(pytester) -> None:
    items = run_budget(pytester, "")
    for i, r in enumerate(items):
        w = r["energy"]
        parts = w["uncertainty_parts_j"]
        assert set(parts) == {"counter_quantisation", "series_counter", "short_window", "baseline_sd", "baseline_drift"}
        # readings before/after item i: 120 + 3i and 120 + 3(i+1), baseline 120: the larger of their
        # difference and their mean's offset from the baseline; the last item has only the one before it
        # no gaps: each re-check is taken right after the previous window (its tail), drift evidence only
        assert r["baseline"]["method"] != "tracked"
        base = r["baseline"]["power_w"]["gpu0"]
        assert base == pytest.approx(120.0, abs=2.0)  # a 0.5 s baseline: a few ms of edge timing
        before, after = 120.0 + 3 * i, 123.0 + 3 * i
        drift = max(3.0, abs(0.5 * (before + after) - base)) if i < len(items) - 1 else abs(before - base)
        assert parts["baseline_drift"] == pytest.approx(drift * w["duration_s"], rel=0.05, abs=0.05), (i, parts)
        expected = (w["uncertainty_j"] ** 2 + parts["baseline_sd"] ** 2 + parts["baseline_drift"] ** 2) ** 0.5
        assert w["adjusted_uncertainty_j"] == pytest.approx(expected)
        assert w["uncertain"] == (w["adjusted_uncertainty_j"] > 0.05 * abs(w["adjusted_energy_j"]))
        assert ("uncertain" in w["flags"]) == w["uncertain"]
        assert r["windows"][0]["uncertainty_parts_j"] == parts
    from pytest_llenergy.results import load

    df = load(pytester.path / "lem-results" / "budget")
    assert df["adjusted_uncertainty_j"].notna().all() and df["uncertainty_baseline_drift_j"].gt(0).all()
    row = df.loc[df["energy_adjusted_j"].abs().idxmax()]
    assert row["uncertainty_pct"] == pytest.approx(row["adjusted_uncertainty_j"] / abs(row["energy_adjusted_j"]) * 100)
    assert isinstance(df, pd.DataFrame) and df["uncertain"].dtype == "boolean"


@pytest.mark.slow
def test_recheck_off_leaves_no_drift(pytester) -> None:
    items = run_budget(pytester, ", recheck_s: 0")
    assert all(r["energy"]["uncertainty_parts_j"]["baseline_drift"] == 0.0 for r in items)
    assert all(r["energy"]["adjusted_uncertainty_j"] is not None for r in items)
