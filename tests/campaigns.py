"""Helpers for tests that write campaigns and test files into a pytester directory."""

from __future__ import annotations

import textwrap

FAKE_SESSION_CONFTEST = '''
import pytest
from pytest_llenergy.backends.base import GenerationStats


class FakeSession:
    load_time_s = 0.01
    engine_info = {"engine": "fake"}

    def prepare(self, workload):
        return workload

    def run(self, workload):
        n = workload.num_prompts
        return GenerationStats(input_tokens=n * workload.input_tokens, output_tokens=n * workload.output_tokens,
                               num_prompts=n, duration_s=0.05, batch_latencies_s=[0.05])

    def close(self):
        pass


@pytest.fixture
def lem_session():
    return FakeSession()
'''

CAMPAIGN_TEST = '''
def test_inference(lem_experiment, lem_session, lem_result):
    stats = lem_session.run(lem_session.prepare(lem_experiment.config.workload))
    lem_result.record_generation(stats)
'''


def write_suite(pytester, campaign: str, test: str = CAMPAIGN_TEST, name: str = "campaign.yaml"):
    """A campaign file, the fake-session conftest and a campaign test in ``pytester``'s directory."""
    pytester.makeconftest(FAKE_SESSION_CONFTEST)
    pytester.makepyfile(test_suite=test)
    path = pytester.path / name
    path.write_text(textwrap.dedent(campaign))
    return path


def collected_ids(result) -> list[str]:
    """Item ids (the part in brackets) from ``--collect-only -q`` output."""
    return [line.split("[", 1)[1].rstrip("]") for line in result.outlines if "::test_inference[" in line]

REPLAY_MEASUREMENT = """
measurement:
  energy_source: replay
  sample_hz: 20
  baseline: {duration_s: 0.5, revalidate_every: 0}
  warmup: {mode: fixed, iterations: 2}
gaps: {between_experiments: 0, between_cycles: 0}
"""

ENERGY_TEST = '''
import time


def test_inference(lem_experiment, lem_session, lem_result, energy):
    workload = lem_session.prepare(lem_experiment.config.workload)
    energy.warmup(lambda: lem_session.run(workload))
    with energy.measure("generate") as window:
        time.sleep(0.3)
        stats = lem_session.run(workload)
        window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens)
    lem_result.record_generation(stats)
'''


MEASURED_TEST = '''
def test_inference(lem_experiment, lem_session, lem_result, energy):
    workload = lem_session.prepare(lem_experiment.config.workload)
    with energy.measure("generate") as window:
        stats = lem_session.run(workload)
        window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens)
    lem_result.record_generation(stats)
'''


def results(pytester, campaign: str) -> list[dict]:
    """Every result JSON of ``campaign`` under pytester's lem-results, as dicts."""
    import json

    return [json.loads(p.read_text()) for p in sorted((pytester.path / "lem-results" / campaign).glob("*/experiments/*.json"))]


def fake_nvml_conftest(tests_dir: str, creep_w: float, power: str = "120.0") -> str:
    """A conftest with one fake NVML GPU idling at ``power`` (W: a number, or a function of seconds as
    Python source) whose idle power rises ``creep_w`` after every test (a number only)."""
    return f'''
import sys, pytest
sys.path.insert(0, {tests_dir!r})
from energy.fake_pynvml import FakeGpu, FakeNvml
from campaigns import FAKE_SESSION_CONFTEST
exec(FAKE_SESSION_CONFTEST)

FAKE = FakeNvml([FakeGpu(0, power={power})])
sys.modules["pynvml"] = FAKE.module
sys.modules["torch"] = None  # no GPU priming: re-importing torch in one process can crash it

@pytest.fixture(autouse=True)
def idle_creeps_up(request):
    yield
    if {creep_w!r}:
        FAKE.gpus[0].power += {creep_w!r}  # idle power drifts per item
'''
