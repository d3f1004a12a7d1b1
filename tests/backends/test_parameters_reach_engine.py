"""Every typed parameter reaches the engine: a non-default value shows up in the keywords given to
``from_pretrained`` / ``generate`` (spied), or in an observable effect.

``real`` generate cases run transformers' own ``generate`` (so it also validates the keywords);
the others fake the output where CPU cannot run the feature (flash kernels, quantised caches, ...).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llenergy.backends.base import BackendError
from pytest_llenergy.backends.introspection import parameters
from pytest_llenergy.backends.transformers import loading as transformers_loading

from .helpers import experiment_at, spy_generate

ONE = {"workload.batch_size": 1, "workload.num_prompts": 1}
BEAMS = {"transformers.num_beams": 2}
SAMPLE = {"decoder.do_sample": True, "decoder.temperature": 1.0}


def _dtype(name: str):
    import torch

    return getattr(torch, name)


# (id, settings, fake the load, patch availability checks, expected from_pretrained keywords)
LOAD_CASES: list[tuple[str, dict[str, Any], bool, bool, dict[str, Any]]] = [
    ("precision-float16", {"precision": "float16"}, False, False, {"dtype": lambda v: v == _dtype("float16")}),
    ("precision-bfloat16", {"precision": "bfloat16"}, False, False, {"dtype": lambda v: v == _dtype("bfloat16")}),
    ("attn-eager", {"transformers.attn_implementation": "eager"}, False, False, {"attn_implementation": "eager"}),
    ("attn-flash2", {"transformers.attn_implementation": "flash_attention_2"}, True, True, {"attn_implementation": "flash_attention_2"}),
    ("attn-flash3", {"transformers.attn_implementation": "flash_attention_3"}, True, True, {"attn_implementation": "flash_attention_3"}),
    ("attn-flex", {"transformers.attn_implementation": "flex_attention"}, True, True, {"attn_implementation": "flex_attention"}),
    ("device-map-auto", {"transformers.device_map": "auto"}, True, True, {"device_map": "auto"}),
    ("device-map-dict", {"transformers.device_map": {"": "cpu"}}, True, True, {"device_map": {"": "cpu"}}),
    ("max-memory", {"transformers.device_map": "balanced", "transformers.max_memory": {0: "1GiB", "cpu": "4GiB"}}, True, True,
     {"device_map": "balanced", "max_memory": {0: "1GiB", "cpu": "4GiB"}}),
    ("offload-folder", {"transformers.device_map": "sequential", "transformers.offload_folder": "/tmp/lem-offload"}, True, True,
     {"offload_folder": "/tmp/lem-offload"}),
    ("trust-remote-code", {"transformers.trust_remote_code": True}, False, False, {"trust_remote_code": True}),
    ("use-kernels", {"transformers.use_kernels": True}, True, True, {"use_kernels": True}),
    ("experts", {"transformers.experts_implementation": "batched_mm"}, True, False, {"experts_implementation": "batched_mm"}),
    ("bnb-4bit", {"transformers.quantization": {"load_in_4bit": True, "bnb_4bit_compute_dtype": "bfloat16",
                                                 "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}},
     True, True, {"quantization_config": lambda q: (q.load_in_4bit, q.bnb_4bit_compute_dtype, q.bnb_4bit_quant_type,
                                                    q.bnb_4bit_use_double_quant) == (True, _dtype("bfloat16"), "nf4", True)}),
    ("bnb-8bit", {"transformers.quantization": {"load_in_8bit": True, "llm_int8_threshold": 4.0,
                                                 "extra": {"llm_int8_skip_modules": ["lm_head"]}}},
     True, True, {"quantization_config": lambda q: (q.load_in_8bit, q.llm_int8_threshold, q.llm_int8_skip_modules)
                  == (True, 4.0, ["lm_head"])}),
    ("extra-load", {"transformers.extra.load": {"use_safetensors": False}}, False, False, {"use_safetensors": False}),
    ("revision", {"model": {"name": "org/some-model", "weights": "pretrained", "revision": "v1.2"}}, True, False, {"revision": "v1.2"}),
    ("gguf-file", {"model": {"name": "org/some-model", "weights": "pretrained", "gguf_file": "model-q4.gguf"}}, True, False, {"gguf_file": "model-q4.gguf"}),
]

LOAD_PATHS = {
    "precision": ["precision-float16"],
    "transformers.attn_implementation": ["attn-eager"],
    "transformers.device_map": ["device-map-auto"],
    "transformers.max_memory": ["max-memory"],
    "transformers.offload_folder": ["offload-folder"],
    "transformers.trust_remote_code": ["trust-remote-code"],
    "transformers.use_kernels": ["use-kernels"],
    "transformers.experts_implementation": ["experts"],
    "transformers.quantization.load_in_4bit": ["bnb-4bit"],
    "transformers.quantization.bnb_4bit_compute_dtype": ["bnb-4bit"],
    "transformers.quantization.bnb_4bit_quant_type": ["bnb-4bit"],
    "transformers.quantization.bnb_4bit_use_double_quant": ["bnb-4bit"],
    "transformers.quantization.load_in_8bit": ["bnb-8bit"],
    "transformers.quantization.llm_int8_threshold": ["bnb-8bit"],
    "transformers.quantization.extra": ["bnb-8bit"],
    "transformers.extra.load": ["extra-load"],
    "model.revision": ["revision"],
    "model.gguf_file": ["gguf-file"],
}


def _matches(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, want in expected.items():
        assert key in actual, f"{key} did not reach the engine: {sorted(actual)}"
        if callable(want):
            assert want(actual[key]), f"{key}={actual[key]!r}"
        else:
            assert actual[key] == want, f"{key}={actual[key]!r}, expected {want!r}"


@pytest.mark.parametrize(("settings", "fake", "patch", "expected"), [c[1:] for c in LOAD_CASES], ids=[c[0] for c in LOAD_CASES])
def test_load_parameter_reaches_from_pretrained(backend, load_spy, monkeypatch, settings, fake, patch, expected):
    if patch:
        import transformers.utils as tu

        monkeypatch.setattr(transformers_loading, "installed", lambda module: True)
        for name in ("is_flash_attn_2_available", "is_flash_attn_3_available", "is_torch_flex_attn_available"):
            monkeypatch.setattr(tu, name, lambda *a, **k: True)
    load_spy.fake = fake
    session = backend.load(experiment_at(settings))
    _matches(load_spy.last, expected)
    recorded = session.engine_info["from_pretrained_kwargs"]
    for key in expected:
        assert key in recorded, f"engine_info does not record {key}"


def test_attn_implementation_is_the_models(backend):
    session = backend.load(experiment_at({"transformers.attn_implementation": "eager"}))
    assert session.model.config._attn_implementation == "eager"


def test_extra_load_config_keys_update_the_random_config(backend):
    session = backend.load(experiment_at({"transformers.extra.load": {"rms_norm_eps": 0.125}}))
    assert session.model.config.rms_norm_eps == 0.125


def test_single_device_map_places_the_model(backend, monkeypatch):
    session = backend.load(experiment_at({"transformers.device_map": "cpu"}))
    assert str(session.device) == "cpu"
    assert "cpu" in session.engine_info["placement"]


def test_low_cpu_mem_usage_true_is_recorded_not_dropped(backend, load_spy):
    session = backend.load(experiment_at({"transformers.low_cpu_mem_usage": True}))
    if transformers_loading.transformers_major() >= 5:
        assert "low_cpu_mem_usage" not in load_spy.last
        assert any("low_cpu_mem_usage" in w for w in session.load_warnings)
        with pytest.raises(BackendError, match="low_cpu_mem_usage: false"):
            backend.load(experiment_at({"transformers.low_cpu_mem_usage": False}))
    else:
        assert load_spy.last["low_cpu_mem_usage"] is True


def test_torch_compile_with_dynamic_cache_compiles_forward(backend, monkeypatch):
    import torch

    calls = []

    def fake_compile(fn, **kwargs):
        calls.append(kwargs)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    session = backend.load(
        experiment_at({"transformers.torch_compile": "max-autotune", "transformers.torch_compile_backend": "aot_eager"})
    )
    assert calls == [{"mode": None, "backend": "aot_eager"}]  # inductor's modes are not passed to other backends
    assert session.engine_info["compile_forward"] == {"mode": None, "backend": "aot_eager"}
    assert any("inductor mode" in w for w in session.load_warnings)
    assert "disable_compile" not in session.engine_info["generate_kwargs"]


def test_float32_matmul_precision_is_set_and_restored(backend, monkeypatch):
    """Each resident session generates under its own setting; the process's is left as it was
    (set at load, the last-loaded session's setting leaked into every other one)."""
    import torch

    before = torch.get_float32_matmul_precision()
    first, second = ("medium", "high") if before == "highest" else ("highest", "medium")
    sessions = [backend.load(experiment_at({**ONE, "transformers.float32_matmul_precision": p})) for p in (first, second)]
    assert torch.get_float32_matmul_precision() == before  # loading alone changes nothing
    seen: list[str] = []
    for session in sessions:
        real = session.model.generate
        monkeypatch.setattr(session.model, "generate",
                            lambda real=real, **kw: seen.append(torch.get_float32_matmul_precision()) or real(**kw))
    for session in (*sessions, sessions[0]):
        session.run(session.prepare(session.experiment.workload))
        assert torch.get_float32_matmul_precision() == before
    assert seen == [first, second, first]
    for session in sessions:
        session.close()
    assert torch.get_float32_matmul_precision() == before


# (id, settings, call the real generate, expected generate keywords)
GENERATE_CASES: list[tuple[str, dict[str, Any], bool, dict[str, Any]]] = [
    ("do-sample", {**SAMPLE, "decoder.temperature": 0.7}, True, {"do_sample": True, "temperature": 0.7}),
    ("top-k", {**SAMPLE, "decoder.top_k": 5}, True, {"top_k": 5}),
    ("top-p", {**SAMPLE, "decoder.top_p": 0.9}, True, {"top_p": 0.9}),
    ("min-p", {**SAMPLE, "decoder.min_p": 0.05}, True, {"min_p": 0.05}),
    ("repetition-penalty", {"decoder.repetition_penalty": 1.3}, True, {"repetition_penalty": 1.3}),
    ("no-repeat-ngram", {"decoder.no_repeat_ngram_size": 2}, True, {"no_repeat_ngram_size": 2}),
    ("preset", {"decoder.preset": "creative"}, True, {"do_sample": True, "temperature": 1.2, "top_p": 0.95, "repetition_penalty": 1.1}),
    ("num-beams", {"transformers.num_beams": 3}, True, {"num_beams": 3}),
    ("length-penalty", {**BEAMS, "transformers.length_penalty": 0.5}, True, {"length_penalty": 0.5}),
    ("early-stopping", {**BEAMS, "transformers.early_stopping": "never"}, True, {"early_stopping": "never"}),
    ("num-return-sequences", {**BEAMS, "transformers.num_return_sequences": 2}, True, {"num_return_sequences": 2}),
    ("guidance-scale", {"transformers.guidance_scale": 1.5}, True, {"guidance_scale": 1.5}),
    ("no-cache", {"transformers.use_cache": False}, True, {"use_cache": False}),
    ("static-cache", {"transformers.cache_implementation": "static"}, True, {"cache_implementation": "static"}),
    ("offloaded-cache", {"transformers.cache_implementation": "offloaded"}, False, {"cache_implementation": "offloaded"}),
    ("max-cache-len", {"transformers.cache_implementation": "static", "transformers.max_cache_len": 64}, True, {"max_cache_len": 64}),
    ("quantized-cache", {"transformers.cache_implementation": "quantized",
                         "transformers.quantized_cache": {"backend": "HQQ", "nbits": 2, "q_group_size": 32, "residual_length": 16}},
     False, {"cache_implementation": "quantized",
             "cache_config": {"backend": "HQQ", "nbits": 2, "q_group_size": 32, "residual_length": 16}}),
    ("prefill-chunk", {"transformers.prefill_chunk_size": 4}, True, {"prefill_chunk_size": 4}),
    ("compile-off", {}, True, {"disable_compile": True}),
    ("compile-static", {"transformers.cache_implementation": "static", "transformers.torch_compile": "reduce-overhead",
                        "transformers.torch_compile_backend": "aot_eager"},
     False, {"compile_config": lambda c: (c.mode, c.backend) == (None, "aot_eager")}),
    ("compile-static-inductor", {"transformers.cache_implementation": "static", "transformers.torch_compile": "reduce-overhead"},
     False, {"compile_config": lambda c: (c.mode, c.backend) == ("reduce-overhead", "inductor")}),
    ("assistant", {**ONE, "transformers.assistant_model": "tiny-gpt2", "transformers.assistant_weights": "random",
                   "transformers.num_assistant_tokens": 3, "transformers.num_assistant_tokens_schedule": "heuristic",
                   "transformers.assistant_confidence_threshold": 0.3},
     True, {"assistant_model": lambda m: type(m).__name__ == "GPT2LMHeadModel", "num_assistant_tokens": 3,
            "num_assistant_tokens_schedule": "heuristic", "assistant_confidence_threshold": 0.3}),
    ("prompt-lookup", {**ONE, "transformers.prompt_lookup_num_tokens": 4, "transformers.max_matching_ngram_size": 3},
     True, {"prompt_lookup_num_tokens": 4, "max_matching_ngram_size": 3}),
    ("early-exit", {**ONE, "transformers.assistant_early_exit": 1}, True, {"assistant_early_exit": 1}),
    ("mtp", {**ONE, "transformers.use_mtp": True}, False, {"use_mtp": True}),
    ("output-scores", {"transformers.output_scores": True}, True, {"output_scores": True, "return_dict_in_generate": True}),
    ("output-logits", {"transformers.output_logits": True}, True, {"output_logits": True, "return_dict_in_generate": True}),
    ("extra-generate", {**SAMPLE, "transformers.extra.generate": {"typical_p": 0.9}}, True, {"typical_p": 0.9}),
    ("output-tokens", {"workload.output_tokens": 6}, True, {"max_new_tokens": 6, "min_new_tokens": 6}),
    ("streaming", {**ONE, "workload.streaming": True}, True, {"streamer": lambda s: s is not None}),
    ("batch-size", {"workload.batch_size": 3, "workload.num_prompts": 3}, True, {"input_ids": lambda t: t.shape[0] == 3}),
    ("input-tokens", {"workload.input_tokens": 5}, True, {"input_ids": lambda t: t.shape[1] == 5}),
]

GENERATE_PATHS = {
    "decoder.do_sample": ["do-sample"],
    "decoder.temperature": ["do-sample"],
    "decoder.top_k": ["top-k"],
    "decoder.top_p": ["top-p"],
    "decoder.min_p": ["min-p"],
    "decoder.repetition_penalty": ["repetition-penalty"],
    "decoder.no_repeat_ngram_size": ["no-repeat-ngram"],
    "decoder.preset": ["preset"],
    "transformers.num_beams": ["num-beams"],
    "transformers.length_penalty": ["length-penalty"],
    "transformers.early_stopping": ["early-stopping"],
    "transformers.num_return_sequences": ["num-return-sequences"],
    "transformers.guidance_scale": ["guidance-scale"],
    "transformers.use_cache": ["no-cache"],
    "transformers.cache_implementation": ["static-cache"],
    "transformers.max_cache_len": ["max-cache-len"],
    "transformers.quantized_cache.backend": ["quantized-cache"],
    "transformers.quantized_cache.nbits": ["quantized-cache"],
    "transformers.quantized_cache.q_group_size": ["quantized-cache"],
    "transformers.quantized_cache.residual_length": ["quantized-cache"],
    "transformers.prefill_chunk_size": ["prefill-chunk"],
    "transformers.torch_compile": ["compile-off", "compile-static"],
    "transformers.torch_compile_backend": ["compile-static"],
    "transformers.assistant_model": ["assistant"],
    "transformers.assistant_weights": ["assistant"],
    "transformers.num_assistant_tokens": ["assistant"],
    "transformers.num_assistant_tokens_schedule": ["assistant"],
    "transformers.assistant_confidence_threshold": ["assistant"],
    "transformers.prompt_lookup_num_tokens": ["prompt-lookup"],
    "transformers.max_matching_ngram_size": ["prompt-lookup"],
    "transformers.assistant_early_exit": ["early-exit"],
    "transformers.use_mtp": ["mtp"],
    "transformers.output_scores": ["output-scores"],
    "transformers.output_logits": ["output-logits"],
    "transformers.extra.generate": ["extra-generate"],
    "workload.output_tokens": ["output-tokens"],
    "workload.streaming": ["streaming"],
    "workload.batch_size": ["batch-size"],
    "workload.input_tokens": ["input-tokens"],
}

#: parameters proven by dedicated tests elsewhere (path -> test)
DEDICATED = {
    "transformers.low_cpu_mem_usage": "test_low_cpu_mem_usage_true_is_recorded_not_dropped",
    "transformers.float32_matmul_precision": "test_float32_matmul_precision_is_set_and_restored",
    "transformers.batching_strategy": "test_transformers_backend.py::test_sorted_batching_runs_longest_first",
    "model.name": "test_transformers_backend.py (every test)",
    "model.weights": "test_transformers_backend.py::test_pretrained_local_checkpoint_runs",
    "workload.prompts": "test_transformers_backend.py::test_builtin_prompts_exact_counts",
    "workload.prompts.file": "test_transformers_backend.py::test_file_prompts_run",
    "workload.num_prompts": "test_transformers_backend.py::test_synthetic_exact_counts",
    "workload.seed": "test_transformers_backend.py::test_seed_fixes_weights_prompts_and_sampling",
    # dataset prompts become texts before any engine sees them (then as workload.prompts.file)
    "workload.prompts.dataset": "test_dataset_prompts.py::test_first_n_rows_of_the_detected_text_column",
    "workload.prompts.subset": "test_dataset_prompts.py::test_hub_names_pass_subset_and_split_to_load_dataset",
    "workload.prompts.split": "test_dataset_prompts.py::test_split_of_a_dataset_dict",
    "workload.prompts.field": "test_dataset_prompts.py::test_missing_column_names_the_columns",
    "workload.prompts.n": "test_dataset_prompts.py::test_first_n_rows_of_the_detected_text_column",
    # serving workloads run on vLLM only (the config rejects them elsewhere)
    "workload.arrivals.process": "backends_vllm/test_vllm_serving.py::test_poisson_and_trace_arrivals_schedule_requests",
    "workload.arrivals.rate_rps": "backends_vllm/test_vllm_serving.py::test_poisson_and_trace_arrivals_schedule_requests",
    "workload.arrivals.trace": "backends_vllm/test_vllm_serving.py::test_poisson_and_trace_arrivals_schedule_requests",
    "workload.arrivals.seed": "backends_vllm/test_vllm_serving.py::test_arrival_seed_changes_the_schedule",
}


@pytest.mark.parametrize(("settings", "real", "expected"), [c[1:] for c in GENERATE_CASES], ids=[c[0] for c in GENERATE_CASES])
def test_generate_parameter_reaches_generate(backend, monkeypatch, settings, real, expected):
    session = backend.load(experiment_at(settings))
    spy = spy_generate(monkeypatch, session, call_through=real)
    stats = session.run(session.prepare(session.experiment.workload))
    _matches(spy.calls[0], expected)  # the top-level call (self-speculation re-enters generate)
    if real:
        per_prompt = settings.get("transformers.num_return_sequences", 1)
        assert stats.output_tokens == stats.num_prompts * per_prompt * session.experiment.workload.output_tokens
    recorded = session.engine_info["generate_kwargs"]
    for key in expected:
        if key not in ("input_ids",):
            assert key in recorded, f"engine_info does not record {key}"


def test_every_typed_parameter_has_a_reach_test():
    case_ids = {c[0] for c in LOAD_CASES} | {c[0] for c in GENERATE_CASES}
    covered = {**LOAD_PATHS, **GENERATE_PATHS}
    for path, ids in covered.items():
        assert set(ids) <= case_ids, path
    missing = [p.path for p in parameters() if p.section in ("common", "transformers")
               and p.path not in covered and p.path not in DEDICATED]
    assert not missing, f"typed parameters without a test proving they reach the engine: {missing}"
