"""ExperimentConfig's validators, decoder presets, the option-facing field helpers, reuse budgets, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_llenergy.config import CampaignConfig, DecoderConfig, ExperimentConfig, WorkloadConfig
from pytest_llenergy.config.experiment import ModelSpec, PromptDataset
from pytest_llenergy.config.fields import (
    UNSET,
    explicit_value,
    field_choices,
    field_default,
    validate_field,
)
from pytest_llenergy.config.files import write_atomically
from pytest_llenergy.config.registry import BUILTIN_BACKENDS, known_backends
from pytest_llenergy.config.reuse import ReuseConfig
from pytest_llenergy.config.sections import TransformersConfig, VllmConfig


def refused(model, match: str, values) -> None:
    with pytest.raises(ValidationError, match=match):
        model.model_validate(values)


class TestExperiment:
    def test_a_model_may_be_a_bare_name(self):
        config = ExperimentConfig.model_validate({"model": "gpt2"})
        assert config.model == ModelSpec(name="gpt2") and config.backend == "transformers"
        assert ExperimentConfig.model_validate({"model": {"name": "gpt2", "weights": "random"}}).model.weights == "random"

    @pytest.mark.parametrize("name", ["", "   "])
    def test_empty_names_are_refused(self, name: str):
        refused(ModelSpec, "model name cannot be empty", {"name": name})
        refused(PromptDataset, "dataset cannot be empty", {"dataset": name})
        assert PromptDataset(dataset="openai/gsm8k").dataset == "openai/gsm8k"

    @pytest.mark.parametrize("name", ["a", "A9_-x", "x" * 80, None])
    def test_safe_experiment_names(self, name):
        assert ExperimentConfig.model_validate({"model": "gpt2", "name": name}).name == name

    @pytest.mark.parametrize("name", ["-a", "_a", "x" * 81, "a/b", "a.b", "..", "a b", ""])
    def test_unsafe_experiment_names(self, name: str):
        refused(ExperimentConfig, r"names use letters, digits, - and _ \(at most 80, no path separators\)",
                {"model": "gpt2", "name": name})

    def test_unknown_backend_lists_the_known_ones(self):
        refused(ExperimentConfig, r"unknown backend 'onnx' \(known: tensorrt, transformers, vllm\)",
                {"model": "gpt2", "backend": "onnx"})
        assert set(BUILTIN_BACKENDS) <= known_backends()

    def test_the_backends_section_is_filled_and_others_refused(self):
        config = ExperimentConfig.model_validate({"model": "gpt2", "backend": "vllm"})
        assert config.vllm == VllmConfig() and config.transformers is None and config.section() is config.vllm
        t = ExperimentConfig.model_validate({"model": "gpt2", "transformers": {"attn_implementation": "eager"}})
        assert t.section() == TransformersConfig(attn_implementation="eager")
        refused(ExperimentConfig, "a `vllm:` section does not apply to backend 'transformers'",
                {"model": "gpt2", "vllm": {}})
        refused(ExperimentConfig, "a `tensorrt:` section does not apply to backend 'vllm'",
                {"model": "gpt2", "backend": "vllm", "tensorrt": {}})

    def test_serving_arrivals_run_on_vllm_only(self):
        arrivals = {"process": "poisson", "rate_rps": 2.0}
        ok = ExperimentConfig.model_validate({"model": "gpt2", "backend": "vllm", "workload": {"arrivals": arrivals}})
        assert ok.workload.arrivals.rate_rps == 2.0
        refused(ExperimentConfig, r"workload.arrivals \(a serving workload\) runs on backend vllm, not 'transformers'",
                {"model": "gpt2", "workload": {"arrivals": arrivals}})

    def test_tensorrt_refuses_float32_only(self):
        refused(ExperimentConfig, "TensorRT-LLM does not run float32: use float16 or bfloat16",
                {"model": "gpt2", "backend": "tensorrt", "precision": "float32"})
        assert ExperimentConfig.model_validate({"model": "gpt2", "backend": "tensorrt", "precision": "float16"})
        assert ExperimentConfig.model_validate({"model": "gpt2", "precision": "float32"}).precision == "float32"

    def test_streaming_needs_batch_one(self):
        assert WorkloadConfig(streaming=True, batch_size=1).streaming
        assert WorkloadConfig(streaming=False, batch_size=4).batch_size == 4
        refused(WorkloadConfig, "streaming measures per-request latency and needs batch_size: 1",
                {"streaming": True, "batch_size": 2})


class TestDecoder:
    def test_greedy_when_nothing_is_set(self):
        assert DecoderConfig().resolved() == {"do_sample": False}

    def test_a_temperature_alone_decides_sampling(self):
        assert DecoderConfig(temperature=0.7).resolved() == {"temperature": 0.7, "do_sample": True}
        assert DecoderConfig(temperature=0.0).resolved() == {"temperature": 0.0, "do_sample": False}

    def test_explicit_values_override_the_preset(self):
        assert DecoderConfig(preset="factual", top_k=3).resolved() == {
            "temperature": 0.3, "do_sample": True, "top_k": 3, "top_p": 0.9}
        assert DecoderConfig(preset="standard", do_sample=False).resolved()["do_sample"] is False
        assert DecoderConfig(preset="greedy").resolved() == {"temperature": 0.0, "do_sample": False}


class TestFields:
    def test_validate_field_checks_like_the_campaign(self):
        assert validate_field("order", "grouped") == "grouped"
        assert validate_field("measurement.sample_hz", "20") == 20.0
        with pytest.raises(ValueError) as info:
            validate_field("order", "random")
        assert str(info.value) == "Input should be 'interleaved', 'shuffled' or 'grouped' (got 'random')"
        with pytest.raises(KeyError, match="no such campaign field"):
            validate_field("measurement.nope", 1)
        with pytest.raises(KeyError, match="name is not a section"):
            validate_field("name.x", 1)

    def test_defaults_and_choices(self):
        assert field_default("order") == "interleaved" and field_default("measurement.sample_hz") == 10.0
        assert field_choices("order") == ("interleaved", "shuffled", "grouped")
        assert field_choices("measurement.sample_hz") is None

    def test_explicit_value_only_when_the_file_sets_it(self):
        campaign = CampaignConfig.model_validate({"name": "x", "order": "grouped", "measurement": {"sample_hz": 20}})
        assert explicit_value(campaign, "order") == "grouped"
        assert explicit_value(campaign, "measurement.sample_hz") == 20.0
        assert explicit_value(campaign, "measurement.driver_buffer") is UNSET
        assert explicit_value(campaign, "seed") is UNSET
        assert explicit_value(campaign, "order.x") is UNSET  # not a section


class TestReuse:
    @pytest.mark.parametrize(("given", "budget"), [("80%", ("fraction", 0.8)), ("40GiB", ("bytes", 40 * 2**30)),
                                                   (1024, ("bytes", 1024.0)), (2.5e9, ("bytes", 2.5e9))])
    def test_budgets(self, given, budget):
        reuse = ReuseConfig(memory_budget=given)
        assert reuse.budget() == budget and isinstance(reuse.memory_budget, str)

    @pytest.mark.parametrize("given", ["150%", "lots", True])
    def test_bad_budgets(self, given):
        with pytest.raises(ValidationError):
            ReuseConfig(memory_budget=given)


def test_write_atomically_replaces_in_one_step(tmp_path: Path):
    target = tmp_path / "sub" / "f.txt"
    assert write_atomically(target, lambda p: p.write_text("one")) == target and target.read_text() == "one"

    def failing(p: Path) -> None:
        p.write_text("partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, failing)
    assert target.read_text() == "one" and sorted(x.name for x in target.parent.iterdir()) == ["f.txt"]
