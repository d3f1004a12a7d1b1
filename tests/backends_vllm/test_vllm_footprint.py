"""vLLM's footprint for resident sessions: its whole gpu_memory_utilization reservation (fake engine)."""

from __future__ import annotations

import pytest

from pytest_llenergy.backends.resident import ResidentSessions
from pytest_llenergy.backends.vllm import footprint as vllm_footprint_module
from pytest_llenergy.backends.vllm.backend import VllmBackend

from .conftest import experiment

GiB = 2**30


@pytest.mark.slow
def test_loaded_engine_reports_its_reservation_and_two_share_a_gpu_only_when_they_fit(fake_vllm, monkeypatch):
    monkeypatch.setattr(vllm_footprint_module, "gpu_bytes", lambda index=0: 80 * GiB)
    backend = VllmBackend()
    half = experiment({"gpu_memory_utilization": 0.5})
    assert backend.estimate_footprint(half).bytes == 40 * GiB
    session = backend.load(half)
    try:
        held = session.footprint()
    finally:
        session.close()
    assert (held.bytes, held.device) == (40 * GiB, "cuda") and "gpu_memory_utilization 0.5" in held.detail

    cache = ResidentSessions(4, ("fraction", 1.0), lambda d: 80 * GiB if d == "cuda" else None, lambda d: None)
    cache.get(backend, half, "a")
    _, info = cache.get(backend, experiment({"gpu_memory_utilization": 0.4}), "b")
    assert info["evicted"] == [] and len(cache.resident) == 2  # 0.5 + 0.4 of 80 GiB: fits
    _, info = cache.get(backend, experiment(), "c")  # vLLM's default 0.9: nothing else fits beside it
    assert [e["load_key"] for e in info["evicted"]] == ["a", "b"] and list(cache.resident) == ["c"]
    cache.close_all()


def test_probe_is_one_short_generate_of_the_real_first_batch(fake_vllm):
    from .conftest import calls

    session = VllmBackend().load(experiment())
    try:
        workload = session.prepare(session.experiment.workload)
        fake_vllm.CALLS.clear()
        session.probe(workload, 3)
    finally:
        session.close()
    (generated,) = calls(fake_vllm, "generate")
    assert len(generated["prompts"]) == len(workload.batches[0])
    assert [c["max_tokens"] for c in calls(fake_vllm, "SamplingParams")] == [3]
