"""Non-default values of the run-level knobs change what happens."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from campaigns import ENERGY_TEST, REPLAY_MEASUREMENT, results, write_suite

TESTS_DIR = Path(__file__).parent

CAMPAIGN = """
name: knobs
cycles: 2
defaults: {model: gpt2, workload: {num_prompts: 2, input_tokens: 4, output_tokens: 5}}
grid: {shared: {workload.batch_size: [1, 2], precision: [float32, bfloat16]}}
""" + REPLAY_MEASUREMENT


def _run_dir(root: Path) -> Path:
    return next(root.iterdir())


@pytest.mark.slow
def test_results_dir_in_the_campaign(pytester):
    write_suite(pytester, CAMPAIGN + "results_dir: measurements/energy\n", test=ENERGY_TEST)
    pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1", "-p", "no:cacheprovider").assert_outcomes(passed=4)
    assert len(list((pytester.path / "measurements" / "energy" / "knobs").glob("*/experiments/*.json"))) == 4
    assert not (pytester.path / "lem-results").exists()


@pytest.mark.slow
def test_sample_rate_reaches_the_sampler(pytester):
    write_suite(pytester, CAMPAIGN, test=ENERGY_TEST)
    pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1", "--lem-sample-hz", "5",
                       "-p", "no:cacheprovider").assert_outcomes(passed=4)
    # the replay source has a driver-style sample buffer (~50 Hz), used by default
    assert all(45 <= r["energy"]["sample_hz"] <= 55 for r in results(pytester, "knobs"))
    (pytester.path / "campaign.yaml").write_text(CAMPAIGN.replace("sample_hz: 20", "sample_hz: 20\n  driver_buffer: false"))
    pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1", "--lem-sample-hz", "5",
                       "-p", "no:cacheprovider").assert_outcomes(passed=4)
    polled = [r["energy"]["sample_hz"] for r in results(pytester, "knobs")][-4:]
    assert all(r == 5.0 for r in polled), polled
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-sample-hz", "500")
    result.stderr.fnmatch_lines(["*--lem-sample-hz: Input should be less than or equal to 100*"])


@pytest.mark.slow
def test_cpu_core_power_reaches_the_estimate_source(pytester):
    write_suite(pytester, CAMPAIGN.replace("energy_source: replay", "energy_source: estimate\n  cpu_core_power_w: 20"), test=ENERGY_TEST)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["llenergy: energy source: estimate: process CPU time x 20 W/core*"])


def test_group_by_option_no_plots_and_storage(pytester, tmp_path):
    write_suite(pytester, CAMPAIGN, test=ENERGY_TEST)
    store = tmp_path / "saved"
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider", "--lem-group-by", "precision",
                       "--lem-no-plots", "--lem-save", "x", "--lem-storage", str(store)).assert_outcomes(passed=8)
    run_dir = _run_dir(pytester.path / "lem-results" / "knobs")
    rows = list(csv.DictReader((run_dir / "summary.csv").open()))
    assert {r["group"] for r in rows if r["level"] == "group"} == {"precision=float32", "precision=bfloat16"}
    assert not list((run_dir / "plots").glob("*.png")) if (run_dir / "plots").exists() else True
    assert (run_dir / "report.html").exists()
    assert len(list(store.glob("*/0001_x.json"))) == 1


@pytest.mark.slow
def test_adaptive_gap_is_bounded_by_max_wait(pytester):
    write_suite(pytester, CAMPAIGN.replace("energy_source: replay", "energy_source: nvml")
                .replace("gaps: {between_experiments: 0, between_cycles: 0}", "gaps: {between_experiments: adaptive, between_cycles: adaptive}"),
                test=ENERGY_TEST)
    pytester.makeconftest(f'''
import sys, pytest
sys.path.insert(0, {str(TESTS_DIR)!r})
from energy.fake_pynvml import FakeGpu, FakeNvml
from campaigns import FAKE_SESSION_CONFTEST
exec(FAKE_SESSION_CONFTEST)

HOT = {{"on": False}}
FAKE = FakeNvml([FakeGpu(0, power=lambda t: 600.0 if HOT["on"] else 120.0)])
sys.modules["pynvml"] = FAKE.module

@pytest.fixture(autouse=True)
def stay_hot_after_the_first_item(request):
    yield
    HOT["on"] = True  # the GPU never cools down: every later gap must give up at max_wait
''')
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1", "--lem-gap-max-wait", "0.6",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    gaps = sorted((r["gap"]["kind"], r["gap"]["waited_s"], r["gap"]["reason"]) for r in results(pytester, "knobs"))
    later = [g for g in gaps if g[0] == "adaptive"]
    assert len(later) == 3
    # the gap gives up at its first reading past max_wait: readings every 0.1 s, plus scheduling slack
    assert all(0.6 <= waited < 0.6 + 0.1 + 0.9 and "not settled after 0.6 s" in reason for _, waited, reason in later)
    for r in results(pytester, "knobs"):  # measured cool (120 W), not hot (600 W)
        baseline = r["baseline"]
        # the energy counter moves in 100 ms steps, so a window of D s counts D/0.1 +- 1 steps of 12 J:
        # the mean power is off by at most 12 J / D (+ 1 W for the counter reads' own time)
        assert abs(baseline["power_w"]["gpu0"] - 120) <= 120 * 0.1 / baseline["duration_s"] + 1.0, baseline
