"""Carbon and cost: per item, per 1,000 prompts and per summary row, from the campaign or the ini."""

from __future__ import annotations

import json

import pytest
from campaigns import results, write_suite
from test_gates import TEST, campaign, constant_trace

from pytest_llenergy.results.carbon import footprint

CARBON = "carbon: {grid_intensity_g_per_kwh: 400, pue: 1.5, price_per_kwh: 0.30, currency: EUR}\n"


def test_footprint_arithmetic():
    f = footprint(3.6e6, 200, grid_intensity_g_per_kwh=400, pue=1.5, price_per_kwh=0.3)
    assert f["kwh"] == pytest.approx(1.5) and f["gco2e"] == pytest.approx(600) and f["cost"] == pytest.approx(0.45)
    assert f["gco2e_per_1k_prompts"] == pytest.approx(3000) and f["cost_per_1k_prompts"] == pytest.approx(2.25)
    assert footprint(1.0, 1, grid_intensity_g_per_kwh=None) is None


def _run(pytester, extra="", *args):
    constant_trace(pytester.path / "trace.csv")
    write_suite(pytester, campaign(2, extra), test=TEST)
    return pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider", *args)


def test_campaign_settings_give_per_item_and_summary_figures(pytester):
    result = _run(pytester, CARBON)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["carbon/cost: * gCO2e, * EUR over 2 item(s) (400 gCO2e/kWh, 0.3 EUR/kWh, PUE 1.5; *"])
    for r in results(pytester, "gates"):
        kwh = r["energy"]["energy_j"] / 3.6e6 * 1.5
        assert r["footprint"]["gco2e"] == pytest.approx(kwh * 400)
        assert r["footprint"]["cost_per_1k_prompts"] == pytest.approx(kwh * 0.30 / 2 * 1000)  # num_prompts 2
    summary = json.loads(next((pytester.path / "lem-results" / "gates").glob("*/summary.json")).read_text())
    stats = summary["experiments"][0]["stats"]
    assert stats["gco2e"]["n"] == 2 and stats["gco2e"]["mean"] > 0
    assert "cost_per_1k_prompts" in stats or "cost" in stats


def test_ini_values_apply_when_the_campaign_has_none(pytester):
    pytester.makeini("[pytest]\nlem_grid_intensity = 100\n")
    result = _run(pytester)
    result.assert_outcomes(passed=2)
    footprints = [r["footprint"] for r in results(pytester, "gates")]
    assert all(f["grid_intensity_g_per_kwh"] == 100 and f["cost"] is None for f in footprints)


def test_without_settings_there_is_no_footprint(pytester):
    _run(pytester).assert_outcomes(passed=2)
    assert all(r["footprint"] is None for r in results(pytester, "gates"))


def test_bad_value_is_a_usage_error(pytester):
    result = _run(pytester, "carbon: {pue: 0.5}\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*carbon.pue*"])
