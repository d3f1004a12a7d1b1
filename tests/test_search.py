"""A campaign's ``search:`` end to end: racing on the ordinary items (replay, transformers), resume, xdist."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from campaigns import MEASURED_TEST, results, write_suite

SLEEPY_SESSION = '''
import time
import pytest
from pytest_llenergy.backends.base import GenerationStats

SECONDS = {1: 0.30, 2: 0.18, 4: 0.10, 8: 0.08}  # the measured window: energy follows it
LATENCY = {1: 0.10, 2: 0.10, 4: 0.10, 8: 0.40}  # what each batch reports: bs8 breaks the 0.25 s limit


class Session:
    load_time_s = 0.0
    engine_info = {}
    def __init__(self, bs): self.bs = bs
    def prepare(self, workload): return workload
    def run(self, workload):
        time.sleep(SECONDS[self.bs])
        return GenerationStats(input_tokens=10, output_tokens=100, num_prompts=1, duration_s=SECONDS[self.bs],
                               batch_latencies_s=[LATENCY[self.bs]])
    def close(self): pass


@pytest.fixture
def lem_session(lem_experiment):
    return Session(lem_experiment.config.workload.batch_size)
'''

CAMPAIGN = """
name: race
cycles: {cycles}
defaults: {{model: gpt2, workload: {{batch_size: 1}}}}
grid: {{shared: {{workload.batch_size: [1, 2, 4, 8]}}}}
measurement:
  energy_source: replay
  sample_hz: 20
  baseline: {{duration_s: 0.5, revalidate_every: 0}}
  warmup: {{mode: "off"}}
gaps: {{between_experiments: 0, between_cycles: 0}}
search:
  objective: energy_per_output_token
  constraints: [{{metric: batch_latency_p95_s, max: 0.25}}]
  stop: {{precision: {precision}}}
"""


def _suite(pytester, cycles=6, precision=0.05):
    write_suite(pytester, CAMPAIGN.format(cycles=cycles, precision=precision), test=MEASURED_TEST)
    pytester.makeconftest(SLEEPY_SESSION)


def _summary(pytester) -> dict:
    [path] = (pytester.path / "lem-results" / "race").glob("*/summary.json")
    return json.loads(path.read_text())


def _rounds_consistent_with_the_race(pytester) -> dict:
    """Every configuration ran rounds 1..k with k = its drop round, or the last round for a survivor; a dropped
    reference runs on to round REFERENCE_ROUNDS (its saving's interval needs three values) unless the race ended."""
    from pytest_llenergy.results.search import REFERENCE_ROUNDS

    search = _summary(pytester)["search"]
    ran: dict[str, list[int]] = {}
    for r in results(pytester, "race"):
        ran.setdefault(r["experiment_id"], []).append(r["cycle"])
    drops = {d["config"]: d["round"] for d in search["dropped"]}
    for config, cycles in ran.items():
        assert sorted(cycles) == list(range(1, len(cycles) + 1)), (config, cycles)
        expected = drops.get(config, search["rounds"])
        if config == search["reference"] and config in drops:
            expected = max(expected, min(REFERENCE_ROUNDS, search["rounds"]))
        assert len(cycles) == expected, (config, cycles, search)
    return search


def test_race_drops_the_slow_and_the_latency_breaker_and_answers_everywhere(pytester):
    _suite(pytester)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider", "-rs")
    result.stdout.fnmatch_lines([
        "*search: racing 4 configurations for at most 6 rounds (min 2); minimise energy_per_output_token; "
        "constraints: batch_latency_p95_s <= 0.25*",
        "*llenergy search*", "search: pick transformers-gpt2-bs*", "search: saving vs reference transformers-gpt2-bs1-*",
        "search: GPU time * s; the exhaustive grid at the same precision ~* s*",
        "SKIPPED * search: dropped after round 2: breaks batch_latency_p95_s <= 0.25*tests <= 0.05)",
    ])
    search = _rounds_consistent_with_the_race(pytester)
    assert search["pick"].split("-")[2] == "bs4" and search["pick_confirmed"]  # bs8 uses less energy, but too slow
    bs8 = next(d for d in search["dropped"] if "-bs8-" in d["config"])
    assert bs8["kind"] == "constraint" and bs8["round"] == 2  # 0.40 s per batch vs a 0.25 s limit
    assert search["saving_vs_reference"]["saving"] > 0.4  # bs4 windows are 3x shorter than bs1's
    assert search["gpu_s"]["spent"] > 0 and search["front_throughput"]
    html = next((pytester.path / "lem-results" / "race").glob("*/report.html")).read_text()
    assert "Search: the energy-optimal configuration" in html and 'alt="search: energy-latency' in html
    assert len(results(pytester, "race")) < 4 * 6  # the race skipped items; every result is kept


def test_resume_continues_mid_race_from_the_files(pytester):
    _suite(pytester, precision=0.0001)  # the lone survivor runs every round
    first = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "2")
    first.assert_outcomes(passed=8)
    second = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-resume", "-rs")
    second.stdout.fnmatch_lines(["*lem-resume: 8 of 24 items done*",
                                 "SKIPPED * search: dropped after round 2: breaks batch_latency_p95_s*"])
    outcomes = second.parseoutcomes()
    assert outcomes.get("deselected") == 8 and outcomes.get("passed", 0) >= 4  # rounds 3-6 of the survivors
    search = _rounds_consistent_with_the_race(pytester)  # nothing dropped in run 1 ran again in run 2
    assert search["rounds"] == 6 and search["survivors"] == [search["pick"]]
    assert outcomes["passed"] + outcomes.get("skipped", 0) == 16


def test_xdist_workers_share_one_race(pytester):
    pytest.importorskip("xdist")
    _suite(pytester)
    result = pytester.runpytest_subprocess("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider", "-n", "2")
    assert result.ret == 0, result.stdout.str()
    _rounds_consistent_with_the_race(pytester)  # every worker skipped exactly what the race decided
    finished = list((pytester.path / "lem-results" / "race").glob("*/search/finished/*/*"))
    assert len(finished) == 4 * 6  # the controller saw every item end (run or skipped)


def test_search_on_the_transformers_tiny_model(pytester):
    pytest.importorskip("transformers")
    suite = Path(__file__).resolve().parents[1] / "energy_suites" / "test_inference.py"
    pytester.makepyfile(test_suite=suite.read_text())  # the suite users run
    (pytester.path / "campaign.yaml").write_text(textwrap.dedent("""
        name: race
        cycles: 3
        defaults:
          backend: transformers
          model: {name: tiny-gpt2, weights: random}
          workload: {num_prompts: 8, input_tokens: 8, output_tokens: 8, batch_size: 8}
        grid: {shared: {workload.batch_size: [1, 8]}}
        measurement: {energy_source: replay, baseline: {duration_s: 0.5, revalidate_every: 0}, warmup: {mode: fixed, iterations: 1}}
        gaps: {between_experiments: 0, between_cycles: 0}
        search: {objective: energy_per_output_token, constraints: [{metric: peak_memory_mb, max: 100000}]}
    """))
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*search: racing 2 configurations*", "search: pick transformers-tiny-gpt2-bs*",
                                 "*reference transformers-tiny-gpt2-bs8-*"])
    search = _rounds_consistent_with_the_race(pytester)
    assert set(search["configs"]) == {r["experiment_id"] for r in results(pytester, "race")}


@pytest.mark.parametrize(("search", "cycles", "expected"), [
    ("{objective: joules}", "4", "*campaign.yaml: search.objective: Input should be*"),
    ("{constraints: [{metric: ttft_p95_ms, max: 100, min: 1}]}", "4", "*search.constraints[[]0]: give exactly one of max or min*"),
    ("{constraints: [{metric: latency}]}", "4", "*search.constraints[[]0].metric: Input should be*"),
    ("{}", "{min: 3, max: 6}", "*campaign.yaml: cycles: a search sets the most rounds with cycles: N*"),
    ("{min_rounds: 5}", "4", "*cycles: 4 is below search.min_rounds (5)*"),
    ("{reference: nothing-like-this}", "4", "*search.reference: 'nothing-like-this' matches no experiment id or name*"),
    ("{reference: {workload.batchsize: 8}}", "4", "*search.reference: 'workload.batchsize': unknown key*"),
    ("{stop: {gpu_budget_s: 5 parsecs}}", "4", "*search.stop.gpu_budget_s: unknown time unit*"),
])
def test_bad_search_sections_are_one_line_errors_naming_file_and_field(pytester, search, cycles, expected):
    write_suite(pytester, f"name: x\ncycles: {cycles}\ndefaults: {{model: gpt2}}\nsearch: {search}\n")
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str() and result.ret == pytest.ExitCode.USAGE_ERROR


def test_order_grouped_and_shards_are_refused(pytester):
    write_suite(pytester, "name: x\ncycles: 3\norder: grouped\ndefaults: {model: gpt2}\nsearch: {}\n")
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider").stderr.fnmatch_lines(
        ["*order: a search runs the survivors round by round: use interleaved or shuffled*"])
    write_suite(pytester, "name: x\ncycles: 3\ndefaults: {model: gpt2}\nsearch: {}\n")
    pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-shard", "1/2", "-p", "no:cacheprovider").stderr.fnmatch_lines(
        ["*search: a race needs every configuration in one run; --lem-shard splits them*"])


def test_reference_not_in_the_grid_joins_the_race(tmp_path, capsys):
    from pytest_llenergy.cli import main

    path = tmp_path / "c.yaml"
    path.write_text("name: x\ncycles: 4\ndefaults: {model: {name: tiny-llama, weights: random}, workload: {batch_size: 3}}\n"
                    "grid: {shared: {workload.batch_size: [1, 2]}}\nsearch: {}\n")
    from pytest_llenergy.config import load_plan

    plan = load_plan(path)
    assert [e.config.workload.batch_size for e in plan.experiments] == [1, 2, 3]
    assert main(["config", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "search: 3 configurations, 2 to 4 rounds (at most 12 items)" in out
    assert "search: reference transformers-tiny-llama-bs3-" in out and "(the campaign's defaults)" in out
