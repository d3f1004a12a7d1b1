"""The energy fixture in campaign items and in ordinary tests (replay source: known H200 power)."""

from __future__ import annotations

import json

import pytest
from campaigns import ENERGY_TEST, REPLAY_MEASUREMENT, results, write_suite

CAMPAIGN = """
name: energy
cycles: 2
defaults: {model: gpt2, workload: {num_prompts: 2, input_tokens: 4, output_tokens: 5}}
grid: {shared: {workload.batch_size: [1, 2]}}
""" + REPLAY_MEASUREMENT


class TestCampaignItems:
    @pytest.mark.slow
    def test_result_holds_energy_baseline_warmup_and_timeseries(self, pytester):
        write_suite(pytester, CAMPAIGN, test=ENERGY_TEST)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=4)
        found = results(pytester, "energy")
        assert len(found) == 4
        first = found[0]
        energy = first["energy"]
        assert energy["name"] == "generate" and energy["source"] == "replay" and energy["simulated"] is True
        assert energy["duration_s"] >= 0.3 and energy["energy_j"] > 0
        # ~120 W idle on the H200 trace: raw energy over >= 0.3 s is tens of joules
        assert 20 < energy["energy_j"] < 700 * energy["duration_s"] * 1.1
        assert energy["adjusted_energy_j"] == energy["energy_j"] - energy["baseline_power_w"] * energy["duration_s"] or abs(
            energy["adjusted_energy_j"] - (energy["energy_j"] - energy["baseline_power_w"] * energy["duration_s"])) < 1e-6
        assert energy["output_tokens"] == first["output_tokens"] == 10
        assert abs(energy["energy_per_output_token_j"] - energy["energy_j"] / 10) < 1e-9
        assert first["baseline"]["method"] in ("fresh", "cached")
        assert first["warmup"]["mode"] == "fixed" and first["warmup"]["iterations"] == 2
        ts = pytester.path / "lem-results" / "energy" / next(iter(p.name for p in (pytester.path / "lem-results" / "energy").iterdir())) / first["timeseries_path"]
        assert ts.exists()

    @pytest.mark.slow
    def test_estimate_source_is_labelled(self, pytester):
        write_suite(pytester, CAMPAIGN.replace("energy_source: replay", "energy_source: estimate"), test=ENERGY_TEST)
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1", "-p", "no:cacheprovider").assert_outcomes(passed=2)
        energy = results(pytester, "energy")[0]["energy"]
        assert energy["estimated"] is True and energy["source"] == "estimate"
        assert energy["adjusted_energy_j"] is None  # a baseline is never subtracted from CPU energy

    @pytest.mark.slow
    def test_energy_source_option_overrides_campaign(self, pytester):
        write_suite(pytester, CAMPAIGN, test=ENERGY_TEST)
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1", "--lem-energy-source", "estimate",
                           "-p", "no:cacheprovider").assert_outcomes(passed=2)
        assert results(pytester, "energy")[0]["energy"]["source"] == "estimate"

    @pytest.mark.slow
    def test_baseline_is_cached_across_runs_and_refreshed_on_request(self, pytester):
        write_suite(pytester, CAMPAIGN, test=ENERGY_TEST)
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1").assert_outcomes(passed=2)
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1").assert_outcomes(passed=2)
        methods = [r["baseline"]["method"] for r in results(pytester, "energy")]
        assert methods.count("fresh") == 2 and methods.count("cached") == 2  # one measurement per run
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1", "--lem-baseline-refresh")
        assert [r["baseline"]["method"] for r in results(pytester, "energy")].count("fresh") == 4

    @pytest.mark.slow
    def test_no_baseline_option(self, pytester):
        write_suite(pytester, CAMPAIGN, test=ENERGY_TEST)
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1", "--lem-no-baseline",
                           "-p", "no:cacheprovider").assert_outcomes(passed=2)
        first = results(pytester, "energy")[0]
        assert first["baseline"] is None and first["energy"]["adjusted_energy_j"] is None


def test_energy_fixture_in_an_ordinary_test(pytester):
    pytester.makepyfile("""
        import time

        def test_work(energy, record_property):
            with energy.measure("a") as w:
                time.sleep(0.2)
                w.record(input_tokens=3, output_tokens=7)
            with energy.measure("b"):
                time.sleep(0.1)
    """)
    result = pytester.runpytest("--lem-energy-source", "replay", "--lem-no-baseline", "--junitxml=out.xml")
    result.assert_outcomes(passed=1)
    xml = (pytester.path / "out.xml").read_text()
    assert 'name="energy.a.energy_j"' in xml and 'name="energy.b.energy_j"' in xml
    assert 'name="energy.a.simulated" value="True"' in xml


def test_body_exception_keeps_partial_window_flagged(pytester):
    write_suite(pytester, CAMPAIGN, test="""
        import time

        def test_inference(lem_experiment, lem_session, lem_result, energy):
            with energy.measure("generate"):
                time.sleep(0.1)
                raise MemoryError("CUDA out of memory (simulated)")
    """)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    found = results(pytester, "energy")
    assert [r["status"] for r in found] == ["failed", "failed"]
    assert "CUDA out of memory" in found[0]["error"]
    assert "aborted" in found[0]["energy"]["flags"] and found[0]["energy"]["duration_s"] >= 0.1
    manifest = json.loads(next((pytester.path / "lem-results" / "energy").glob("*/manifest.json")).read_text())
    assert {e["status"] for e in manifest["entries"].values()} == {"failed"}
