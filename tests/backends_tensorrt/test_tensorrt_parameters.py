"""Every typed TensorRT-LLM parameter reaches the right object of the `LLM` API (fake tensorrt_llm).

One row per leaf of the `tensorrt:` section: a non-default value and the check on what the fake
recorded. A section field without a row fails the completeness test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from pytest_llenergy.backends.base import BackendError
from pytest_llenergy.backends.introspection import parameters
from pytest_llenergy.backends.tensorrt.backend import TensorrtBackend

from .conftest import calls, experiment


class Seen:
    """What one load + run handed to the fake: the LLM keywords, the build config, the sampling keywords."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.llm = calls(fake, "LLM")[-1]
        self.build = self.llm.get("build_config")
        self.plugins = self.build.plugin_config if self.build is not None else None
        self.sampling = calls(fake, "SamplingParams")[-1]
        self.quant = self.llm.get("quant_config")
        self.calib = self.llm.get("calib_config")
        self.kv = self.llm.get("kv_cache_config")
        self.scheduler = self.llm.get("scheduler_config")


Check = Callable[[Seen], bool]
ROWS: dict[str, tuple[dict[str, Any], Check]] = {
    "max_batch_size": ({"max_batch_size": 16}, lambda s: s.build.max_batch_size == 16),
    "max_input_len": ({"max_input_len": 256}, lambda s: s.build.max_input_len == 256),
    "max_seq_len": ({"max_seq_len": 512}, lambda s: s.build.max_seq_len == 512),
    "max_num_tokens": ({"max_num_tokens": 2048}, lambda s: s.build.max_num_tokens == 2048),
    "opt_num_tokens": ({"opt_num_tokens": 1024}, lambda s: s.build.opt_num_tokens == 1024),
    "max_beam_width": ({"max_beam_width": 4}, lambda s: s.build.max_beam_width == 4),
    "builder_opt_level": ({"builder_opt_level": 5}, lambda s: s.build.builder_opt == 5),
    "strongly_typed": ({"strongly_typed": False}, lambda s: s.build.strongly_typed is False),
    "weight_sparsity": ({"weight_sparsity": True}, lambda s: s.build.weight_sparsity is True),
    "weight_streaming": ({"weight_streaming": True}, lambda s: s.build.weight_streaming is True),
    "gemm_plugin": ({"gemm_plugin": "float16"}, lambda s: s.plugins.gemm_plugin == "float16"),
    "context_fmha": ({"context_fmha": False}, lambda s: s.plugins.context_fmha is False),
    "use_fp8_context_fmha": ({"use_fp8_context_fmha": True}, lambda s: s.plugins.use_fp8_context_fmha is True),
    "multiple_profiles": ({"multiple_profiles": True}, lambda s: s.plugins.multiple_profiles is True),
    "remove_input_padding": ({"remove_input_padding": False}, lambda s: s.plugins.remove_input_padding is False),
    "use_fused_mlp": ({"use_fused_mlp": False}, lambda s: s.plugins.use_fused_mlp is False),
    "reduce_fusion": ({"reduce_fusion": True}, lambda s: s.plugins.reduce_fusion is True),
    "kv_cache_block_size": ({"kv_cache_block_size": 32}, lambda s: s.plugins.tokens_per_block == 32),
    "tp_size": ({"tp_size": 2}, lambda s: s.llm["tensor_parallel_size"] == 2),
    "pp_size": ({"pp_size": 2}, lambda s: s.llm["pipeline_parallel_size"] == 2),
    "quantization": ({"quantization": "int4_awq"}, lambda s: s.quant.quant_algo.name == "W4A16_AWQ"),
    "kv_cache_quantization": ({"kv_cache_quantization": "fp8"},
                              lambda s: s.quant.kv_cache_quant_algo.name == "FP8" and s.quant.quant_algo is None),
    "quant_group_size": ({"quantization": "int4_gptq", "quant_group_size": 64}, lambda s: s.quant.group_size == 64),
    "smoothquant_alpha": ({"quantization": "int8_sq", "smoothquant_alpha": 0.8},
                          lambda s: s.quant.smoothquant_val == 0.8 and s.quant.quant_algo.name == "W8A8_SQ_PER_CHANNEL"),
    "calibration.dataset": ({"quantization": "fp8", "calibration": {"dataset": "wikitext"}},
                            lambda s: s.calib.calib_dataset == "wikitext"),
    "calibration.num_batches": ({"quantization": "fp8", "calibration": {"num_batches": 64}},
                                lambda s: s.calib.calib_batches == 64),
    "calibration.batch_size": ({"quantization": "fp8", "calibration": {"batch_size": 4}},
                               lambda s: s.calib.calib_batch_size == 4),
    "calibration.max_seq_length": ({"quantization": "fp8", "calibration": {"max_seq_length": 1024}},
                                   lambda s: s.calib.calib_max_seq_length == 1024),
    "kv_cache_type": ({"kv_cache_type": "continuous"}, lambda s: s.build.kv_cache_type.name == "CONTINUOUS"),
    "kv_cache_free_gpu_memory_fraction": ({"kv_cache_free_gpu_memory_fraction": 0.7},
                                          lambda s: s.kv.free_gpu_memory_fraction == 0.7),
    "kv_cache_max_tokens": ({"kv_cache_max_tokens": 4096}, lambda s: s.kv.max_tokens == 4096),
    "enable_block_reuse": ({"enable_block_reuse": False}, lambda s: s.kv.enable_block_reuse is False),
    "kv_cache_host_size": ({"kv_cache_host_size": 2**30}, lambda s: s.kv.host_cache_size == 2**30),
    "enable_chunked_context": ({"enable_chunked_context": True},
                               lambda s: s.llm["enable_chunked_prefill"] is True and s.plugins.use_paged_context_fmha),
    "capacity_scheduler_policy": ({"capacity_scheduler_policy": "max_utilization"},
                                  lambda s: s.scheduler.capacity_scheduler_policy.name == "MAX_UTILIZATION"),
    "context_chunking_policy": ({"enable_chunked_context": True, "context_chunking_policy": "equal_progress"},
                                lambda s: s.scheduler.context_chunking_policy.name == "EQUAL_PROGRESS"),
    "batching_type": ({"batching_type": "static"}, lambda s: s.llm["batching_type"].name == "STATIC"),
    "draft_model": ({"draft_model": "org/draft", "num_draft_tokens": 4},
                    lambda s: s.llm["speculative_config"].speculative_model == "org/draft"
                    and s.build.speculative_decoding_mode.name == "DRAFT_TOKENS_EXTERNAL"),
    "num_draft_tokens": ({"draft_model": "org/draft", "num_draft_tokens": 6},
                         lambda s: s.llm["speculative_config"].max_draft_len == 6 and s.build.max_draft_len == 6),
    "beam_width": ({"beam_width": 3}, lambda s: s.sampling["beam_width"] == 3 and s.build.max_beam_width == 3),
}
OWN_TESTS = {"engine_cache_dir", "force_rebuild", "extra.build", "extra.runtime"}


def _run(exp) -> Any:
    session = TensorrtBackend().load(exp)
    stats = session.run(session.prepare(exp.workload))
    return session, stats


def test_every_section_leaf_has_a_row():
    leaves = {p.path.removeprefix("tensorrt.") for p in parameters("tensorrt")}
    assert leaves == set(ROWS) | OWN_TESTS


@pytest.mark.parametrize("name", sorted(ROWS))
def test_typed_parameter_reaches_tensorrt_llm(fake_trt, name):
    section, check = ROWS[name]
    _run(experiment(section))
    assert check(Seen(fake_trt)), name


@pytest.mark.parametrize(
    ("value", "algo"),
    [("fp8", "FP8"), ("int8_sq", "W8A8_SQ_PER_CHANNEL"), ("int8_weight_only", "W8A16"), ("int4_weight_only", "W4A16"),
     ("int4_awq", "W4A16_AWQ"), ("int4_gptq", "W4A16_GPTQ"), ("w4a8_awq", "W4A8_AWQ"), ("nvfp4", "NVFP4")],
)
def test_every_quantisation_maps_to_its_quant_algo(fake_trt, value, algo):
    _run(experiment({"quantization": value}))
    assert Seen(fake_trt).quant.quant_algo.name == algo


def test_defaults_pass_only_what_the_experiment_sets(fake_trt):
    session, stats = _run(experiment(None))
    seen = Seen(fake_trt)
    assert seen.llm["model"] == "fake-org/fake-model" and seen.llm["dtype"] == "float16"
    for key in ("quant_config", "calib_config", "kv_cache_config", "scheduler_config", "speculative_config",
                "tensor_parallel_size", "enable_chunked_prefill"):
        assert key not in seen.llm
    assert seen.sampling["max_tokens"] == seen.sampling["min_tokens"] == 5 and seen.sampling["ignore_eos"] is True
    assert seen.sampling["top_k"] == 1  # greedy
    assert (stats.input_tokens, stats.output_tokens, stats.num_prompts) == (32, 20, 4)


def test_decoder_settings_reach_sampling_params(fake_trt):
    _run(experiment(None, decoder={"do_sample": True, "temperature": 0.6, "top_k": 40, "top_p": 0.9,
                                   "repetition_penalty": 1.1, "no_repeat_ngram_size": 3}, workload__seed=8))
    s = Seen(fake_trt).sampling
    assert (s["temperature"], s["top_k"], s["top_p"], s["repetition_penalty"], s["no_repeat_ngram_size"], s["seed"]) == (
        0.6, 40, 0.9, 1.1, 3, 8)


class TestExtra:
    def test_extra_build_runtime_and_nested_mappings_reach_tensorrt_llm(self, fake_trt):
        _run(experiment({"kv_cache_free_gpu_memory_fraction": 0.8, "capacity_scheduler_policy": "guaranteed_no_evict",
                         "extra": {"build": {"use_refit": True, "plugin_config": {"gpt_attention_plugin": "float16"}},
                                   "runtime": {"enable_tqdm": True, "kv_cache_config": {"max_attention_window": [512]}}}}))
        seen = Seen(fake_trt)
        assert seen.build.use_refit is True and seen.plugins.gpt_attention_plugin == "float16"
        assert seen.llm["enable_tqdm"] is True
        assert seen.kv.max_attention_window == [512] and seen.kv.free_gpu_memory_fraction == 0.8

    @pytest.mark.parametrize(
        ("extra", "owner"),
        [
            ({"build": {"max_batch_size": 4}}, "tensorrt.max_batch_size"),
            ({"build": {"builder_opt": 2}}, "tensorrt.builder_opt_level"),
            ({"build": {"plugin_config": {"gemm_plugin": "auto"}}}, "tensorrt.gemm_plugin"),
            ({"runtime": {"tensor_parallel_size": 2}}, "tensorrt.tp_size"),
            ({"runtime": {"quant_config": {}}}, "tensorrt.quantization"),
            ({"runtime": {"dtype": "float16"}}, "precision"),
            ({"runtime": {"kv_cache_config": {"enable_block_reuse": True}}}, "tensorrt.enable_block_reuse"),
            ({"runtime": {"scheduler_config": {"capacity_scheduler_policy": "x"}}}, "tensorrt.capacity_scheduler_policy"),
        ],
    )
    def test_a_key_both_typed_and_in_extra_is_an_error(self, extra, owner):
        with pytest.raises(ValidationError, match=f"is set by `{owner}`"):
            experiment({"extra": extra})

    def test_unknown_build_or_plugin_key_is_an_error_not_a_drop(self, fake_trt):
        with pytest.raises(BackendError, match="BuildConfig has no not_a_field"):
            TensorrtBackend().load(experiment({"extra": {"build": {"not_a_field": 1}}}))
        with pytest.raises(BackendError, match="plugin_config has no option 'nope'"):
            TensorrtBackend().load(experiment({"extra": {"build": {"plugin_config": {"nope": 1}}}}))


class TestVersions:
    def test_builder_opt_level_on_a_version_without_it_is_an_error(self, fake_trt, monkeypatch):
        from tensorrt_llm import llmapi

        newer = _without(llmapi.BuildConfig, {"builder_opt"})
        monkeypatch.setattr(llmapi, "BuildConfig", newer)
        with pytest.raises(BackendError, match="has no builder optimisation level"):
            TensorrtBackend().load(experiment({"builder_opt_level": 3}))

    def test_older_sampling_params_names_are_used(self, fake_trt, monkeypatch):
        import dataclasses

        from tensorrt_llm import llmapi

        older = _without(llmapi.SamplingParams, {"seed", "ignore_eos"},
                         [("random_seed", int, dataclasses.field(default=None))])
        monkeypatch.setattr(llmapi, "SamplingParams", older)
        session = TensorrtBackend().load(experiment(None, decoder={"do_sample": True}, workload__seed=3))
        session.prepare(session.experiment.workload)
        params = session._sampling(5, 3)
        assert (params.random_seed, params.end_id, params.max_tokens, params.min_tokens) == (3, -1, 5, 5)


def _without(cls: type, drop: set[str], add: list | None = None) -> type:
    """A copy of the dataclass ``cls`` without the fields ``drop`` (another TensorRT-LLM version)."""
    import dataclasses

    fields = [(f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory))
              for f in dataclasses.fields(cls) if f.name not in drop]
    return dataclasses.make_dataclass(cls.__name__, fields + list(add or []))


class TestValidation:
    def test_float32_is_rejected(self):
        with pytest.raises(ValidationError, match="does not run float32"):
            experiment(None, precision="float32")

    @pytest.mark.parametrize(
        ("section", "message"),
        [
            ({"draft_model": "d"}, "draft_model and num_draft_tokens go together"),
            ({"quant_group_size": 64}, "quant_group_size applies to"),
            ({"smoothquant_alpha": 0.5, "quantization": "fp8"}, "smoothquant_alpha applies"),
            ({"calibration": {"num_batches": 8}}, "calibration applies"),
            ({"max_input_len": 600, "max_seq_len": 512}, "max_input_len must not exceed"),
            ({"kv_cache_type": "continuous", "enable_block_reuse": True}, "needs kv_cache_type: paged"),
            ({"beam_width": 4, "max_beam_width": 2}, "beam_width must not exceed"),
            ({"context_chunking_policy": "equal_progress"}, "needs enable_chunked_context"),
        ],
    )
    def test_inconsistent_settings_are_errors(self, section, message):
        with pytest.raises(ValidationError, match=message):
            experiment(section)
