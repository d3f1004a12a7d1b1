"""Adaptive baseline and re-checks inside the thermal gaps, end to end (fake NVML)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from campaigns import ENERGY_TEST, fake_nvml_conftest, results, write_suite

TESTS_DIR = Path(__file__).parent

CAMPAIGN = """
name: gaps
cycles: 1
defaults: {model: gpt2, workload: {num_prompts: 2, input_tokens: 4, output_tokens: 5}}
grid: {shared: {workload.batch_size: [1, 2, 4]}}
gaps: {between_experiments: GAP, between_cycles: GAP, max_wait: 5s}
measurement:
  energy_source: nvml
  sample_hz: 20
  baseline: BASELINE
  warmup: {mode: fixed, iterations: 1}
"""

def run(pytester, gap: str, baseline: str, creep: float = 3.0, power: str = "120.0",
        sizes: str = "[1, 2, 4]") -> tuple[list[dict], dict]:
    campaign = CAMPAIGN.replace("GAP", gap).replace("BASELINE", baseline).replace("[1, 2, 4]", sizes)
    write_suite(pytester, campaign, test=ENERGY_TEST)
    pytester.makeconftest(fake_nvml_conftest(str(TESTS_DIR), creep, power))
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider").assert_outcomes(
        passed=len(sizes.split(",")))
    items = sorted(results(pytester, "gaps"), key=lambda r: r["started_at"])
    walltime = next((pytester.path / "lem-results" / "gaps").glob("*/walltime.json"))
    return items, json.loads(walltime.read_text())


def test_rechecks_and_revalidation_cost_no_idle_time_beyond_the_gaps(pytester) -> None:
    items, wall = run(pytester, "1.2s", "{min_duration_s: 2, revalidate_every: 2, recheck_s: 0.5}")
    first = items[0]["baseline"]
    assert first["method"] == "fresh" and first["duration_s"] == pytest.approx(2.0, abs=0.1)  # the floor: idle is steady
    assert first["se_w"]["gpu0"] == pytest.approx(0.0, abs=0.05)
    for r in items[1:]:
        assert r["gap"]["kind"] == "fixed" and r["gap"]["waited_s"] == pytest.approx(1.2, abs=0.15)
        assert "the last 0.5 s an idle re-check" in r["gap"]["reason"]
        assert r["timing"]["baseline_s"] == 0.0
    # outside items: only the first baseline (2 s; it is also the reading before the first item); the
    # re-checks sit in the gaps and the revalidation after item 2 pooled them (no 5 s reading)
    assert 1.9 <= wall["baseline_outside_items_s"] < 2.8
    # idle rose 3 W per item: each item subtracted the first baseline moved by the drift its own
    # re-check read on the series (123 W, 126 W), so the adjusted power stays the work's alone
    for i, r in enumerate(items[1:], 1):
        assert r["baseline"]["method"] == "tracked", r["baseline"]
        assert r["baseline"]["power_w"]["gpu0"] == pytest.approx(120.0 + 3 * i, abs=0.5)
        assert r["baseline"]["anchor_w"]["gpu0"] == pytest.approx(120.0, abs=0.5)
    work_w = [r["energy"]["adjusted_energy_j"] / r["energy"]["duration_s"] for r in items]
    assert max(work_w) - min(work_w) < 0.5, work_w  # a step-wise baseline leaves 3 and 6 W in items 2, 3
    # the re-check in item 2's gap (123 W) settles item 1's drift: max(123 - 120, mean - 120) = 3 W
    e = items[0]["energy"]
    assert e["uncertainty_parts_j"]["baseline_drift"] == pytest.approx(3.0 * e["duration_s"], rel=0.1)
    # each result keeps the re-checks that bracket it (nothing measured is lost): before it, and the
    # one after it written in once taken; the last item has none after it
    bracket = [(r["baseline"]["recheck_before_w"], r["baseline"]["recheck_after_w"]) for r in items]
    assert bracket[0][0]["gpu0"] == pytest.approx(120.0, abs=0.5)  # the fresh baseline is the reading before
    assert bracket[0][1]["gpu0"] == pytest.approx(123.0, abs=0.5) == bracket[1][0]["gpu0"]
    assert bracket[1][1]["gpu0"] == pytest.approx(126.0, abs=0.5) == bracket[2][0]["gpu0"]
    assert bracket[2][1] is None


def test_an_adaptive_gap_ends_with_the_recheck(pytester) -> None:
    items, wall = run(pytester, "adaptive", "{min_duration_s: 3, revalidate_every: 0, recheck_s: 0.5}", creep=1.5)
    assert items[0]["baseline"]["duration_s"] == pytest.approx(3.0, abs=0.1)  # a non-default floor
    for r in items[1:]:
        gap = r["gap"]
        assert gap["kind"] == "adaptive" and gap["reason"].startswith("experiment gap: settled after")
        assert gap["reason"].endswith("then a 0.5 s idle re-check") and 1.3 <= gap["waited_s"] < 2.5
    assert all(r["timing"]["baseline_s"] == 0.0 for r in items)
    assert wall["baseline_outside_items_s"] < 3.8  # the 3 s baseline only
    e = items[0]["energy"]  # the re-check before item 2 (121.5 W) bracketed item 1
    assert e["uncertainty_parts_j"]["baseline_drift"] == pytest.approx(1.5 * e["duration_s"], rel=0.1)


WANDER = "lambda t: 120.0 + 0.1 * ((int(t) * 7919) % 5 - 2)"  # idle wandering +-0.2 W from second to second


@pytest.mark.parametrize(("settings", "seconds"), [
    ("{min_duration_s: 2, duration_s: 6}", 6.0),  # the rule's 0.09 W is out of reach: the cap
    ("{min_duration_s: 2, duration_s: 6, ci_share: 1, adjusted_fraction: 1}", 2.0),  # 3.6 W: the floor
    ("{min_duration_s: 2, duration_s: 6, ci_target: 0.9, ci_share: 0.5}", 2.0),
])
def test_the_campaigns_precision_settings_set_the_baselines_length(pytester, settings: str, seconds: float) -> None:
    items, _ = run(pytester, "0", settings, creep=0.0, power=WANDER, sizes="[1]")
    assert items[0]["baseline"]["duration_s"] == pytest.approx(seconds, abs=0.15)
