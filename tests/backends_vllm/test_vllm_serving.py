"""Serving workloads and phase timelines on the fake vLLM (the real engine: test_vllm_real.py)."""

from __future__ import annotations

import pytest

from pytest_llenergy.backends.base import BackendError
from pytest_llenergy.backends.vllm.serving import poisson_offsets, trace_offsets

from .conftest import experiment


def _run(exp):
    from pytest_llenergy.backends.vllm.backend import VllmBackend

    session = VllmBackend().load(exp)
    try:
        return session.run(session.prepare(exp.workload))
    finally:
        session.close()


def test_offline_run_reports_engine_timeline(fake_vllm):
    stats = _run(experiment())
    tl = stats.timeline
    assert tl is not None and tl.clock == "monotonic" and "scheduled_ts" in tl.source
    assert len(tl.requests) == 4 and all(r.start_s <= r.first_token_s <= r.end_s for r in tl.requests)
    assert {r.output_tokens for r in tl.requests} == {5} and {r.input_tokens for r in tl.requests} == {8}
    assert tl.max_batch == 256
    assert tl.caveats == ("split_unverified",)  # the H200 check's verdict travels with every vLLM timeline


def test_async_scheduling_marks_first_token_stamps_late(fake_vllm):
    """vLLM stamps the first token after preparing the next step when it schedules asynchronously."""
    tl = _run(experiment({"async_scheduling": True})).timeline
    assert tl is not None and tl.caveats == ("split_unverified", "first_token_late:async_scheduling")


def test_poisson_and_trace_arrivals_schedule_requests(fake_vllm, tmp_path):
    from vllm.engine_core import ADDED

    ADDED.clear()
    stats = _run(experiment(workload__arrivals={"process": "poisson", "rate_rps": 200.0},
                            workload__num_prompts=6, vllm={"max_num_seqs": 2}))
    offsets = poisson_offsets(6, 200.0, 0)
    added = [t for _, t in ADDED]
    assert len(added) == 6
    # each request enters the engine no earlier than its arrival (open loop)
    assert all(a - added[0] >= o - 1e-6 for a, o in zip(added, offsets))
    tl = stats.timeline
    assert [r.arrival_s - tl.requests[0].arrival_s for r in tl.requests] == pytest.approx(offsets)
    assert tl.max_batch == 2
    running = [sum(1 for r in tl.requests if r.start_s <= t < r.end_s) for t in (r.start_s for r in tl.requests)]
    assert max(running) <= 2
    trace = tmp_path / "arrivals.txt"
    trace.write_text("# seconds\n0\n0.01\n0.01\n0.05\n")
    ADDED.clear()
    _run(experiment(workload__arrivals={"process": "trace", "trace": str(trace)}))
    gaps = [t - ADDED[0][1] for _, t in ADDED]
    assert gaps[3] >= 0.05 - 1e-6 and gaps[1] >= 0.01 - 1e-6


def test_arrival_seed_changes_the_schedule():
    assert poisson_offsets(5, 10.0, 1) != poisson_offsets(5, 10.0, 2)
    assert poisson_offsets(5, 10.0, 1) == poisson_offsets(5, 10.0, 1)
    from pytest_llenergy.backends.vllm.serving import arrival_offsets
    from pytest_llenergy.config.phases import ArrivalSettings

    a = arrival_offsets(ArrivalSettings(process="poisson", rate_rps=10.0, seed=7), 5, seed=0)
    assert a == poisson_offsets(5, 10.0, 7) and a != arrival_offsets(
        ArrivalSettings(process="poisson", rate_rps=10.0), 5, seed=0)


def test_bad_traces_name_file_and_line(tmp_path):
    bad = tmp_path / "t.txt"
    bad.write_text("0\nsoon\n")
    with pytest.raises(BackendError, match=r"t.txt:2: not a number"):
        trace_offsets(bad, 2)
    bad.write_text("0\n0.5\n0.2\n")
    with pytest.raises(BackendError, match=r"t.txt:3: .*non-decreasing"):
        trace_offsets(bad, 3)
    with pytest.raises(BackendError, match="3 arrivals for num_prompts 4"):
        trace_offsets(_write(tmp_path / "s.txt", "0\n1\n2\n"), 4)
    with pytest.raises(BackendError, match="not readable"):
        trace_offsets(tmp_path / "missing.txt", 1)


def _write(path, text):
    path.write_text(text)
    return path


def test_arrivals_are_rejected_off_vllm():
    from pydantic import ValidationError

    from pytest_llenergy.config.experiment import ExperimentConfig

    with pytest.raises(ValidationError, match="runs on backend vllm"):
        ExperimentConfig.model_validate({"model": "gpt2", "workload": {"arrivals": {"process": "poisson", "rate_rps": 1}}})
    with pytest.raises(ValidationError, match="poisson needs rate_rps"):
        ExperimentConfig.model_validate({"backend": "vllm", "model": "gpt2", "workload": {"arrivals": {"process": "poisson"}}})


def test_a_resident_engine_serves_the_workload_it_is_given(fake_vllm):
    """One engine is shared by experiments that differ only in the workload (load_key): a serving
    workload prepared on a session loaded for an offline experiment still arrives over time (on the
    H200 the shared engine ran a Poisson workload as one offline batch: achieved 6,016 req/s for 64)."""
    from vllm.engine_core import ADDED

    from pytest_llenergy.backends.vllm.backend import VllmBackend

    offline = experiment(workload__num_prompts=6)
    serving = experiment(workload__num_prompts=6, workload__arrivals={"process": "poisson", "rate_rps": 200.0})
    backend = VllmBackend()
    assert backend.load_key(offline) == backend.load_key(serving)
    session = backend.load(offline)
    try:
        ADDED.clear()
        stats = session.run(session.prepare(serving.workload))
        added = [t for _, t in ADDED]
        assert len(added) == 6
        assert all(a - added[0] >= o - 1e-6 for a, o in zip(added, poisson_offsets(6, 200.0, 0)))
        assert stats.timeline is not None and stats.timeline.requests[-1].arrival_s > stats.timeline.requests[0].arrival_s
        ADDED.clear()
        session.run(session.prepare(offline.workload))
        assert not ADDED  # the offline workload goes through generate(), not add_request
    finally:
        session.close()
