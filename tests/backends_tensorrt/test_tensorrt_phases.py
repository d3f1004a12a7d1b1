"""Contract: TensorRT-LLM's per-request timing fields become the phase timeline (fake engine)."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

from pytest_llenergy.backends.tensorrt.backend import TensorrtBackend
from pytest_llenergy.backends.tensorrt.phases import request_timing, timeline

from .conftest import calls, experiment


def test_run_asks_for_perf_metrics_and_reports_the_timeline(fake_trt):
    session = TensorrtBackend().load(experiment(None))
    try:
        stats = session.run(session.prepare(session.experiment.workload))
    finally:
        session.close()
    params = calls(fake_trt, "SamplingParams")[-1]
    assert params["return_perf_metrics"] is True
    tl = stats.timeline
    assert tl is not None and tl.clock == "monotonic" and "timing_metrics" in tl.source
    assert len(tl.requests) == stats.num_prompts
    for r in tl.requests:
        assert r.arrival_s <= r.start_s < r.first_token_s <= r.end_s
        assert r.first_token_s - r.start_s == __import__("pytest").approx(0.005, abs=1e-6)
    assert not any("no per-request timing" in w for w in stats.warnings)


def test_timedeltas_map_to_seconds_and_missing_fields_give_no_timeline():
    td = datetime.timedelta
    timing = SimpleNamespace(arrival_time=td(seconds=1.0), first_scheduled_time=td(seconds=1.5),
                             first_token_time=td(seconds=2.0), last_token_time=td(seconds=3.0))
    out = SimpleNamespace(prompt_token_ids=[1, 2, 3], outputs=[SimpleNamespace(
        token_ids=[4, 5], request_perf_metrics=SimpleNamespace(timing_metrics=timing))])
    r = request_timing(out, 0)
    assert (r.arrival_s, r.start_s, r.first_token_s, r.end_s) == (1.0, 1.5, 2.0, 3.0)
    assert (r.input_tokens, r.output_tokens) == (3, 2)
    old = SimpleNamespace(prompt_token_ids=[1], outputs=[SimpleNamespace(token_ids=[4])])  # TensorRT-LLM < 0.20
    assert timeline([out, old]) is None


def test_stamps_out_of_order_are_clamped_so_no_phase_is_negative():
    td = datetime.timedelta
    timing = SimpleNamespace(arrival_time=td(seconds=1.0), first_scheduled_time=td(seconds=2.0),
                             first_token_time=td(seconds=1.8), last_token_time=td(seconds=1.9))
    out = SimpleNamespace(prompt_token_ids=[1], outputs=[SimpleNamespace(
        token_ids=[4], request_perf_metrics=SimpleNamespace(timing_metrics=timing))])
    r = request_timing(out, 0)
    assert (r.start_s, r.first_token_s, r.end_s) == (2.0, 2.0, 2.0)  # was an end 0.1 s before the first token
