"""vLLM's per-request stamps at their edges (backends/vllm/phases.py, metrics.py): what becomes a phase boundary,
a TTFT or an inter-token latency, and what is refused. Every expected value is worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from pytest_llenergy.backends.vllm.metrics import (
    ENGINE_METRICS_MODE,
    engine_metrics_mode_supported,
    request_latencies,
)
from pytest_llenergy.backends.vllm.phases import (
    SOURCE,
    max_num_seqs,
    request_timing,
    stamp_caveats,
    timeline,
)


def _output(rid: str = "7", *, scheduled: float | None = 10.0, queued: float | None = 9.5, first: float | None = 10.2,
            last: float | None = 11.0, prompt: list[int] | None = None, outputs: tuple[int, ...] = (5,)) -> NS:
    metrics = NS(scheduled_ts=scheduled, queued_ts=queued, first_token_ts=first, last_token_ts=last)
    return NS(request_id=rid, metrics=metrics, prompt_token_ids=[1, 2, 3] if prompt is None else prompt,
              outputs=[NS(token_ids=list(range(n))) for n in outputs])


def test_a_request_is_its_scheduled_first_and_last_stamps_with_its_tokens():
    r = request_timing(_output(outputs=(5, 2)), 0, arrival=9.0)
    assert (r.request_id, r.start_s, r.first_token_s, r.end_s) == ("7", 10.0, 10.2, 11.0)
    assert (r.input_tokens, r.output_tokens, r.arrival_s) == (3, 7, 9.0)  # every returned sequence counts


def test_the_queue_stamp_stands_in_for_a_missing_schedule_stamp():
    assert request_timing(_output(scheduled=None), 0).start_s == 9.5
    assert request_timing(_output(scheduled=0.0), 0).start_s == 9.5  # 0 is vLLM's "not stamped"


@pytest.mark.parametrize("missing", [{"scheduled": None, "queued": None}, {"first": None}, {"last": None},
                                     {"first": 0.0}, {"last": 0.0}])
def test_a_request_without_its_stamps_has_no_timing(missing):
    assert request_timing(_output(**missing), 0) is None
    assert request_timing(NS(request_id="x"), 0) is None  # no metrics at all


def test_stamps_out_of_order_are_clamped_so_no_phase_is_negative():
    r = request_timing(_output(first=9.8, last=9.7), 0)  # first token before schedule, last before first
    assert (r.start_s, r.first_token_s, r.end_s) == (10.0, 10.0, 10.0)


def test_an_unnamed_request_takes_its_index_and_one_without_ids_counts_no_tokens():
    out = _output()
    del out.request_id, out.prompt_token_ids, out.outputs
    r = request_timing(out, 4)
    assert (r.request_id, r.input_tokens, r.output_tokens, r.arrival_s) == ("4", 0, 0, None)
    unnamed = [_output(), _output()]
    for o in unnamed:
        del o.request_id
    assert [r.request_id for r in timeline(unnamed, None).requests] == ["0", "1"]


def test_a_timeline_is_every_request_or_none():
    outs = [_output("a"), _output("b", scheduled=10.5, first=10.6, last=11.5)]
    tl = timeline(outs, 8, arrivals=[9.0, 9.1], caveats=("split_unverified",))
    assert [r.request_id for r in tl.requests] == ["a", "b"] and [r.arrival_s for r in tl.requests] == [9.0, 9.1]
    assert (tl.clock, tl.source, tl.max_batch, tl.caveats) == ("monotonic", SOURCE, 8, ("split_unverified",))
    assert timeline(outs, None).requests[1].arrival_s is None and timeline(outs, None).caveats == ()
    assert timeline([*outs, _output("c", last=None)], 8) is None  # never a partial timeline


def test_stamp_caveats_follow_the_resolved_scheduler():
    assert stamp_caveats({}) == ("split_unverified",)
    sync = {"engine_resolved": {"scheduler_config": {"async_scheduling": False}}}
    assert stamp_caveats(sync) == ("split_unverified",)
    asynchronous = {"engine_resolved": {"scheduler_config": {"async_scheduling": True}}}
    assert stamp_caveats(asynchronous) == ("split_unverified", "first_token_late:async_scheduling")


@pytest.mark.parametrize(("value", "expected"), [(256, 256), (128.0, 128), (None, None), ("256", None)])
def test_max_num_seqs_as_the_engine_resolved_it(value, expected):
    info = {"engine_resolved": {"scheduler_config": {"max_num_seqs": value}}}
    assert max_num_seqs(info) == expected
    assert max_num_seqs({}) is None


def test_v1_latencies_ttft_from_the_engine_and_itl_as_the_mean_gap():
    v1 = NS(first_token_latency=0.05, first_token_ts=10.0, last_token_ts=10.4, num_generation_tokens=5)
    assert request_latencies(v1) == (0.05, pytest.approx(0.1))  # 0.4 s over 4 gaps


def test_itl_needs_two_tokens_and_ordered_stamps():
    base = {"first_token_latency": 0.05, "first_token_ts": 10.0, "last_token_ts": 10.4}
    assert request_latencies(NS(**base, num_generation_tokens=2)) == (0.05, pytest.approx(0.4))
    assert request_latencies(NS(**base, num_generation_tokens=1)) == (0.05, None)  # one token: no gap
    assert request_latencies(NS(**base, num_generation_tokens=None)) == (0.05, None)
    assert request_latencies(NS(**base)) == (0.05, None)  # an engine that does not count its tokens
    backwards = dict(base, last_token_ts=9.9)
    assert request_latencies(NS(**backwards, num_generation_tokens=3)) == (0.05, None)
    same = dict(base, last_token_ts=10.0)
    assert request_latencies(NS(**same, num_generation_tokens=3)) == (0.05, 0.0)  # equal stamps: a 0 s gap


def test_v0_metrics_give_ttft_from_arrival():
    v0 = NS(arrival_time=5.0, first_token_time=5.25, last_token_time=5.65, num_generation_tokens=3)
    assert request_latencies(v0) == (pytest.approx(0.25), pytest.approx(0.2))
    no_arrival = NS(first_token_time=5.25, last_token_time=5.65, num_generation_tokens=3)
    assert request_latencies(no_arrival) == (None, pytest.approx(0.2))
    no_last = NS(arrival_time=5.0, first_token_time=5.25, num_generation_tokens=3)
    assert request_latencies(no_last) == (pytest.approx(0.25), None)


@pytest.mark.parametrize("ttft", [0.0, -0.01])
def test_a_ttft_that_is_not_positive_is_not_reported(ttft):
    assert request_latencies(NS(first_token_latency=ttft, first_token_ts=None, last_token_ts=None,
                                num_generation_tokens=None)) == (None, None)
    assert request_latencies(None) == (None, None)


def test_the_engine_metrics_latency_mode_is_known_to_the_results():
    assert ENGINE_METRICS_MODE == "engine_metrics" and engine_metrics_mode_supported()
