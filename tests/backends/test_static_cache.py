"""The GPU-bound path on CPU: static KV cache (and torch.compile) with warmup probes, on tiny-llama."""

from __future__ import annotations

import pytest

from pytest_llenergy.backends.base import Footprint

from .helpers import experiment_at

WORKLOAD = {"num_prompts": 4, "batch_size": 2, "input_tokens": 12, "output_tokens": 10}


def _tokens(backend, section):
    session = backend.load(experiment_at({"workload": WORKLOAD, **section}))
    session.keep_output_ids = True
    try:
        workload = session.prepare(session.experiment.workload)
        session.probe(workload, 3)
        longest = max(len(p) for p in workload.batches[0])
        cache_len = getattr(session.model, "_previous_max_cache_length", None)
        stats = session.run(workload)
        return stats, cache_len, longest
    finally:
        session.close()


@pytest.mark.slow
def test_static_cache_matches_dynamic_token_for_token_and_probe_sizes_the_cache(backend):
    dynamic, _, _ = _tokens(backend, {})
    static, cache_len, longest = _tokens(backend, {"transformers.cache_implementation": "static"})
    assert static.output_tokens == dynamic.output_tokens == 4 * 10
    assert static.output_token_ids == dynamic.output_token_ids
    assert cache_len == longest + 10  # the 3-token probe allocated the full run's cache: no re-allocation


@pytest.mark.slow
def test_static_cache_with_torch_compile_runs_exactly(backend):
    stats, cache_len, longest = _tokens(backend, {"transformers.cache_implementation": "static",
                                                  "transformers.torch_compile": "default",
                                                  "transformers.torch_compile_backend": "aot_eager"})
    assert stats.output_tokens == 40 and cache_len == longest + 10


def test_footprint_and_estimate_agree_on_parameter_bytes(backend):
    experiment = experiment_at({"workload": WORKLOAD})
    estimate = backend.estimate_footprint(experiment)
    session = backend.load(experiment)
    try:
        held = session.footprint()
        params = sum(p.numel() * p.element_size() for p in session.model.parameters())
    finally:
        session.close()
    assert isinstance(held, Footprint) and held.device == "cpu" == estimate.device
    assert estimate.bytes == pytest.approx(held.bytes, rel=0.01) and held.bytes >= params
    assert session.footprint().bytes == 0  # closed
