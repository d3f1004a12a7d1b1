"""A fake engine whose phases have known boundaries: it busies the host for the prefill, then the
decode of each batch, and reports the perf_counter stamps it took, like the real backends do."""

FAKE_PHASE_CONFTEST = '''
import time

import pytest
from pytest_llenergy.backends.base import GenerationStats
from pytest_llenergy.config.timeline import PhaseTimeline, RequestTiming

PREFILL_S, DECODE_S = 0.06, 0.12


class PhaseSession:
    load_time_s = 0.01
    engine_info = {"engine": "fake-phases"}

    def prepare(self, workload):
        return workload

    def run(self, workload):
        n, bs = workload.num_prompts, workload.batch_size
        requests = []
        t_start = time.perf_counter()
        for b in range(0, n, bs):
            s = time.perf_counter()
            time.sleep(PREFILL_S)
            f = time.perf_counter()
            time.sleep(DECODE_S)
            e = time.perf_counter()
            requests += [RequestTiming(f"b{b}r{r}", s, f, e, workload.input_tokens, workload.output_tokens,
                                       arrival_s=s - 0.01 * r)
                         for r in range(min(bs, n - b))]
        return GenerationStats(input_tokens=n * workload.input_tokens, output_tokens=n * workload.output_tokens,
                               num_prompts=n, duration_s=time.perf_counter() - t_start,
                               timeline=PhaseTimeline("perf_counter", "fake engine", requests, max_batch=bs,
                                                     caveats=("stamps_late",)))

    def close(self):
        pass


@pytest.fixture
def lem_session():
    return PhaseSession()
'''

PHASE_TEST = '''
def test_inference(lem_experiment, lem_session, lem_result, energy):
    workload = lem_session.prepare(lem_experiment.config.workload)
    with energy.measure("generate") as window:
        stats = lem_session.run(workload)
        window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens, timeline=stats.timeline)
    lem_result.record_generation(stats)
    energy.resolve_phases("generate", lambda: lem_session.run(workload))
'''

CAMPAIGN = """
name: phases
cycles: 1
defaults: {model: gpt2, workload: {num_prompts: 4, batch_size: 2, input_tokens: 8, output_tokens: 5}}
measurement:
  energy_source: replay
  sample_hz: 20
  baseline: {duration_s: 0.5, revalidate_every: 0}
  warmup: {mode: off}
gaps: {between_experiments: 0, between_cycles: 0}
"""
