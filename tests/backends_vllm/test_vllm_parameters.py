"""Every typed vLLM parameter reaches `vllm.LLM(...)`, `SamplingParams(...)` or `generate(...)` (fake vllm).

The table below names, for each leaf of the `vllm:` section, a non-default value and where it must
arrive; a test fails when a section field has no row, so a new field cannot go unchecked.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pytest_llenergy.backends.base import BackendError
from pytest_llenergy.backends.introspection import parameters
from pytest_llenergy.backends.vllm.backend import VllmBackend

from .conftest import calls, experiment

SAMPLING = {"decoder": {"do_sample": True, "temperature": 0.7}}

#: section path -> (section value, where it lands, check on that call's keywords)
ENGINE_ROWS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "max_num_seqs": (8, "LLM", {"max_num_seqs": 8}),
    "max_num_batched_tokens": (1024, "LLM", {"max_num_batched_tokens": 1024}),
    "gpu_memory_utilization": (0.5, "LLM", {"gpu_memory_utilization": 0.5}),
    "kv_cache_memory_bytes": (2**30, "LLM", {"kv_cache_memory_bytes": 2**30}),
    "cpu_offload_gb": (2.0, "LLM", {"cpu_offload_gb": 2.0}),
    "kv_offloading_size": (1.5, "LLM", {"kv_offloading_size": 1.5}),
    "tensor_parallel_size": (2, "LLM", {"tensor_parallel_size": 2}),
    "pipeline_parallel_size": (2, "LLM", {"pipeline_parallel_size": 2}),
    "data_parallel_size": (2, "LLM", {"data_parallel_size": 2}),
    "distributed_executor_backend": ("ray", "LLM", {"distributed_executor_backend": "ray"}),
    "disable_custom_all_reduce": (True, "LLM", {"disable_custom_all_reduce": True}),
    "enable_expert_parallel": (True, "LLM", {"enable_expert_parallel": True}),
    "enable_prefix_caching": (False, "LLM", {"enable_prefix_caching": False}),
    "enable_chunked_prefill": (False, "LLM", {"enable_chunked_prefill": False}),
    "kv_cache_dtype": ("fp8", "LLM", {"kv_cache_dtype": "fp8"}),
    "block_size": (32, "LLM", {"block_size": 32}),
    "max_model_len": (512, "LLM", {"max_model_len": 512}),
    "enforce_eager": (True, "LLM", {"enforce_eager": True}),
    "optimization_level": (3, "LLM", {"optimization_level": 3}),
    "performance_mode": ("throughput", "LLM", {"performance_mode": "throughput"}),
    "cudagraph_mode": ("FULL", "LLM", {"compilation_config": {"cudagraph_mode": "FULL"}}),
    "cudagraph_capture_sizes": ([1, 2, 4], "LLM", {"compilation_config": {"cudagraph_capture_sizes": [1, 2, 4]}}),
    "max_cudagraph_capture_size": (64, "LLM", {"compilation_config": {"max_cudagraph_capture_size": 64}}),
    "long_prefill_token_threshold": (256, "LLM", {"long_prefill_token_threshold": 256}),
    "async_scheduling": (True, "LLM", {"async_scheduling": True}),
    "attention_backend": ("FLASH_ATTN", "LLM", {"attention_backend": "FLASH_ATTN"}),
    "disable_sliding_window": (True, "LLM", {"disable_sliding_window": True}),
    "quantization": ("awq", "LLM", {"quantization": "awq"}),
    "seed": (123, "LLM", {"seed": 123}),
    "request_metrics": (False, "LLM", {"disable_log_stats": True}),
    "n": (2, "SamplingParams", {"n": 2}),
    "logprobs": (5, "SamplingParams", {"logprobs": 5}),
    "prompt_logprobs": (3, "SamplingParams", {"prompt_logprobs": 3}),
    "detokenize": (True, "SamplingParams", {"detokenize": True}),
}
#: nested leaves, set as a whole sub-mapping
NESTED_ROWS: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    "speculative.method": ({"speculative": {"method": "ngram", "num_speculative_tokens": 3}}, "LLM",
                           {"speculative_config": {"method": "ngram", "num_speculative_tokens": 3}}),
    "speculative.model": ({"speculative": {"method": "draft_model", "model": "org/draft", "num_speculative_tokens": 4}},
                          "LLM", {"speculative_config": {"method": "draft_model", "model": "org/draft",
                                                         "num_speculative_tokens": 4}}),
    "speculative.num_speculative_tokens": ({"speculative": {"method": "ngram", "num_speculative_tokens": 7}}, "LLM",
                                           {"speculative_config": {"method": "ngram", "num_speculative_tokens": 7}}),
    "speculative.prompt_lookup_min": ({"speculative": {"method": "ngram", "num_speculative_tokens": 2,
                                                       "prompt_lookup_min": 2, "prompt_lookup_max": 5}}, "LLM",
                                      {"speculative_config": {"method": "ngram", "num_speculative_tokens": 2,
                                                              "prompt_lookup_min": 2, "prompt_lookup_max": 5}}),
    "speculative.prompt_lookup_max": ({"speculative": {"method": "ngram", "num_speculative_tokens": 2,
                                                       "prompt_lookup_max": 4}}, "LLM",
                                      {"speculative_config": {"method": "ngram", "num_speculative_tokens": 2,
                                                              "prompt_lookup_max": 4}}),
    "speculative.draft_tensor_parallel_size": (
        {"speculative": {"method": "eagle", "model": "org/eagle", "num_speculative_tokens": 2,
                         "draft_tensor_parallel_size": 1}},
        "LLM", {"speculative_config": {"method": "eagle", "model": "org/eagle", "num_speculative_tokens": 2,
                                       "draft_tensor_parallel_size": 1}}),
    "lora.enabled": ({"lora": {"enabled": True}}, "LLM", {"enable_lora": True}),
    "lora.max_loras": ({"lora": {"enabled": True, "max_loras": 3}}, "LLM", {"enable_lora": True, "max_loras": 3}),
    "lora.max_lora_rank": ({"lora": {"enabled": True, "max_lora_rank": 64}}, "LLM", {"max_lora_rank": 64}),
    "lora.max_cpu_loras": ({"lora": {"enabled": True, "max_cpu_loras": 4}}, "LLM", {"max_cpu_loras": 4}),
    "lora.fully_sharded_loras": ({"lora": {"enabled": True, "fully_sharded_loras": True}}, "LLM",
                                 {"fully_sharded_loras": True}),
}
#: checked by their own tests below
OWN_TESTS = {"swap_space", "lora.adapter", "prompt_input", "extra.engine", "extra.sampling"}


def _run(fake, exp) -> Any:
    session = VllmBackend().load(exp)
    stats = session.run(session.prepare(exp.workload))
    session.close()
    return session, stats


def _last(fake, kind: str) -> dict[str, Any]:
    found = calls(fake, kind)
    assert found, f"no {kind} call"
    return found[-1]


def test_every_section_leaf_has_a_row():
    leaves = {p.path.removeprefix("vllm.") for p in parameters("vllm")}
    covered = set(ENGINE_ROWS) | set(NESTED_ROWS) | OWN_TESTS
    assert leaves == covered


@pytest.mark.parametrize("name", sorted(ENGINE_ROWS))
def test_typed_parameter_reaches_vllm(fake_vllm, name):
    value, where, expected = ENGINE_ROWS[name]
    extra = SAMPLING if name == "n" else {}
    _run(fake_vllm, experiment({name: value}, **extra))
    got = _last(fake_vllm, where)
    for key, want in expected.items():
        assert got[key] == want, (name, key, got.get(key))


@pytest.mark.parametrize("name", sorted(NESTED_ROWS))
def test_nested_parameter_reaches_vllm(fake_vllm, name):
    section, where, expected = NESTED_ROWS[name]
    _run(fake_vllm, experiment(section))
    got = _last(fake_vllm, where)
    for key, want in expected.items():
        assert got[key] == want, (name, key, got.get(key))


def test_lora_adapter_goes_with_every_request(fake_vllm, tmp_path):
    _run(fake_vllm, experiment({"lora": {"enabled": True, "adapter": str(tmp_path)}}))
    requests = [c["lora_request"] for c in calls(fake_vllm, "generate")]
    assert requests and all(r is not None and r.lora_path == str(tmp_path) for r in requests)


def test_lora_options_need_enabled():
    with pytest.raises(ValidationError, match="need lora.enabled"):
        experiment({"lora": {"max_lora_rank": 8}})


def test_swap_space_reaches_an_older_vllm_and_is_an_error_on_one_without_it(fake_vllm, monkeypatch):
    with pytest.raises(BackendError, match=r"has no engine argument swap_space \(from `vllm.swap_space`\)"):
        VllmBackend().load(experiment({"swap_space": 4}))
    import dataclasses

    from vllm.engine import arg_utils

    older = dataclasses.make_dataclass(
        "EngineArgs", [(f.name, object, dataclasses.field(default=None)) for f in dataclasses.fields(arg_utils.EngineArgs)]
        + [("swap_space", object, dataclasses.field(default=None))],
    )
    monkeypatch.setattr(arg_utils, "EngineArgs", older)
    monkeypatch.setattr(fake_vllm, "EngineArgs", older)
    _run(fake_vllm, experiment({"swap_space": 4}))
    assert _last(fake_vllm, "LLM")["swap_space"] == 4


def test_common_fields_reach_vllm(fake_vllm):
    exp = experiment(None, precision="bfloat16", model__revision="abc123", workload__output_tokens=7, workload__seed=5)
    session, stats = _run(fake_vllm, exp)
    llm = _last(fake_vllm, "LLM")
    assert (llm["model"], llm["dtype"], llm["revision"], llm["seed"]) == ("fake-org/fake-model", "bfloat16", "abc123", 5)
    assert llm["disable_log_stats"] is False
    sp = _last(fake_vllm, "SamplingParams")
    assert sp == {"max_tokens": 7, "min_tokens": 7, "ignore_eos": True, "temperature": 0.0, "detokenize": False}
    assert stats.output_tokens == 4 * 7 and stats.input_tokens == 4 * 8 and stats.num_prompts == 4


def test_decoder_settings_reach_sampling_params(fake_vllm):
    exp = experiment(None, decoder={"do_sample": True, "temperature": 0.8, "top_k": 20, "top_p": 0.9, "min_p": 0.05,
                                    "repetition_penalty": 1.2}, workload__seed=9)
    _run(fake_vllm, exp)
    sp = _last(fake_vllm, "SamplingParams")
    assert {k: sp[k] for k in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed")} == {
        "temperature": 0.8, "top_k": 20, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.2, "seed": 9}


def test_greedy_drops_sampling_filters_with_a_note(fake_vllm):
    session, stats = _run(fake_vllm, experiment(None, decoder={"top_k": 5}))
    assert "top_k" not in _last(fake_vllm, "SamplingParams")
    assert any("decoder.top_k=5 has no effect with greedy" in w for w in stats.warnings)


def test_no_repeat_ngram_size_is_refused_not_dropped(fake_vllm):
    session = VllmBackend().load(experiment(None, decoder={"no_repeat_ngram_size": 3}))
    with pytest.raises(BackendError, match="no_repeat_ngram_size has no vLLM equivalent"):
        session.prepare(session.experiment.workload)


def test_large_logprobs_raise_the_engine_limit(fake_vllm):
    _run(fake_vllm, experiment({"logprobs": 30}))
    assert _last(fake_vllm, "LLM")["max_logprobs"] == 30
    assert _last(fake_vllm, "SamplingParams")["logprobs"] == 30


def test_n_counts_every_completion(fake_vllm):
    _, stats = _run(fake_vllm, experiment({"n": 3}, **SAMPLING))
    assert stats.output_tokens == 3 * 4 * 5
    assert not any("other than" in w for w in stats.warnings)


class TestExtra:
    def test_extra_engine_and_sampling_reach_vllm(self, fake_vllm):
        _run(fake_vllm, experiment({"extra": {"engine": {"num_gpu_blocks_override": 64, "scheduling_policy": "priority"},
                                              "sampling": {"presence_penalty": 0.5, "stop_token_ids": [7]}}}))
        llm, sp = _last(fake_vllm, "LLM"), _last(fake_vllm, "SamplingParams")
        assert (llm["num_gpu_blocks_override"], llm["scheduling_policy"]) == (64, "priority")
        assert (sp["presence_penalty"], sp["stop_token_ids"]) == (0.5, [7])

    @pytest.mark.parametrize(
        ("extra", "owner"),
        [
            ({"engine": {"max_num_seqs": 4}}, "vllm.max_num_seqs"),
            ({"engine": {"dtype": "float16"}}, "precision"),
            ({"engine": {"enable_lora": True}}, "vllm.lora.enabled"),
            ({"engine": {"speculative_config": {}}}, "vllm.speculative"),
            ({"sampling": {"max_tokens": 3}}, "workload.output_tokens"),
            ({"sampling": {"logprobs": 2}}, "vllm.logprobs"),
            ({"sampling": {"temperature": 0.3}}, "decoder.temperature"),
        ],
    )
    def test_a_key_both_typed_and_in_extra_is_an_error(self, extra, owner):
        with pytest.raises(ValidationError, match=f"is set by `{owner}`"):
            experiment({"extra": extra})

    def test_compilation_config_merges_with_typed_cudagraph_fields(self, fake_vllm):
        _run(fake_vllm, experiment({"cudagraph_mode": "PIECEWISE",
                                    "extra": {"engine": {"compilation_config": {"mode": 3}}}}))
        assert _last(fake_vllm, "LLM")["compilation_config"] == {"mode": 3, "cudagraph_mode": "PIECEWISE"}
        with pytest.raises(ValidationError, match="compilation_config.cudagraph_mode is set by `vllm.cudagraph_mode`"):
            experiment({"cudagraph_mode": "FULL", "extra": {"engine": {"compilation_config": {"cudagraph_mode": "NONE"}}}})

    def test_unknown_extra_key_fails_before_the_engine_starts(self, fake_vllm):
        with pytest.raises(BackendError, match="has no engine argument not_a_vllm_arg"):
            VllmBackend().load(experiment({"extra": {"engine": {"not_a_vllm_arg": 1}}}))
        assert not calls(fake_vllm, "LLM")


class TestValidation:
    def test_speculative_needs_a_model_for_model_methods(self):
        with pytest.raises(ValidationError, match="needs speculative.model"):
            experiment({"speculative": {"method": "eagle", "num_speculative_tokens": 2}})

    def test_prompt_lookup_only_for_ngram(self):
        with pytest.raises(ValidationError, match="only applies to method 'ngram'"):
            experiment({"speculative": {"method": "draft_model", "model": "m", "num_speculative_tokens": 2,
                                        "prompt_lookup_min": 1}})

    def test_enforce_eager_contradicts_cuda_graphs(self):
        with pytest.raises(ValidationError, match="contradicts enforce_eager"):
            experiment({"enforce_eager": True, "cudagraph_mode": "FULL"})

    def test_vllm_section_only_for_vllm(self):
        with pytest.raises(ValidationError, match="does not apply to backend 'transformers'"):
            ExperimentConfigFactory.transformers_with_vllm_section()


class ExperimentConfigFactory:
    @staticmethod
    def transformers_with_vllm_section():
        from pytest_llenergy.config.experiment import ExperimentConfig

        return ExperimentConfig.model_validate({"backend": "transformers", "model": "x", "vllm": {"max_num_seqs": 2}})
