"""Adaptive cycles through the plugin: later cycles skip once the CI is tight enough."""

from __future__ import annotations

from campaigns import results, write_suite

CONFTEST = '''
import pytest
from pytest_llenergy.backends.base import GenerationStats


class Session:
    load_time_s = 0.0
    engine_info = {}
    def __init__(self, cycle, noisy): self.cycle, self.noisy = cycle, noisy
    def prepare(self, workload): return workload
    def run(self, workload):
        duration = 0.05 * (1 + 0.3 * (self.cycle % 2)) if self.noisy else 0.05
        return GenerationStats(input_tokens=10, output_tokens=100, num_prompts=1, duration_s=duration)
    def close(self): pass


@pytest.fixture
def lem_session(lem_experiment):
    return Session(lem_experiment.cycle, lem_experiment.config.workload.batch_size == 2)
'''

TEST = '''
def test_inference(lem_experiment, lem_session, lem_result):
    lem_result.record_generation(lem_session.run(lem_session.prepare(lem_experiment.config.workload)))
'''

CAMPAIGN = """
name: adaptive
cycles: {cycles}
defaults: {{model: gpt2}}
grid: {{shared: {{workload.batch_size: [1, 2]}}}}
measurement: {{energy_source: estimate}}
gaps: {{between_experiments: 0, between_cycles: 0}}
"""


def test_stable_experiment_stops_early_noisy_one_runs_on(pytester):
    write_suite(pytester, CAMPAIGN.format(cycles="{min: 3, max: 6, target_ci_halfwidth: 0.02, metric: tokens_per_s}"), test=TEST)
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-rs", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*adaptive cycles: CI half-width 0.0 % ≤ target 2.0 % after 3 cycles*"])
    result.assert_outcomes(passed=3 + 6, skipped=3)
    ran = sorted((r["config"]["workload"]["batch_size"], r["cycle"]) for r in results(pytester, "adaptive"))
    assert [c for bs, c in ran if bs == 1] == [1, 2, 3] and [c for bs, c in ran if bs == 2] == [1, 2, 3, 4, 5, 6]


def test_fixed_cycles_never_skip(pytester):
    write_suite(pytester, CAMPAIGN.format(cycles=4), test=TEST)
    pytester.makeconftest(CONFTEST)
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider").assert_outcomes(passed=8)
