"""The `transformers:` section: validation of real constraints, pass-through conflicts, advisories."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pytest_llenergy.config.transformers_section import (
    GENERATE_KEYS_OWNED,
    LOAD_KEYS_OWNED,
    TransformersConfig,
)


def invalid(message: str, **values):
    with pytest.raises(ValidationError, match=message):
        TransformersConfig(**values)


def test_defaults_are_valid_and_every_field_is_described():
    TransformersConfig()

    def described(model):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"

    from pytest_llenergy.config.transformers_section import (
        QuantizedCacheSettings,
        TransformersExtra,
        TransformersQuantization,
    )

    for model in (TransformersConfig, TransformersQuantization, QuantizedCacheSettings, TransformersExtra):
        described(model)


def test_unknown_keys_are_rejected():
    invalid("Extra inputs are not permitted", attn_impl="sdpa")
    invalid("Extra inputs are not permitted", quantization={"load_in_3bit": True})


@pytest.mark.parametrize("key", ["torch_dtype", "attn_implementation", "device_map", "quantization_config", "revision"])
def test_extra_load_may_not_shadow_a_typed_field(key):
    invalid(rf"extra.load.{key} is set by `{LOAD_KEYS_OWNED[key]}`", extra={"load": {key: "x"}})


@pytest.mark.parametrize("key", ["num_beams", "temperature", "max_new_tokens", "cache_implementation", "assistant_model"])
def test_extra_generate_may_not_shadow_a_typed_field(key):
    owner = GENERATE_KEYS_OWNED[key].replace("(", r"\(").replace(")", r"\)")
    invalid(rf"extra.generate.{key} is set by `{owner}`", extra={"generate": {key: 1}})


def test_free_extra_keys_pass():
    config = TransformersConfig(extra={"load": {"use_safetensors": True}, "generate": {"typical_p": 0.9}})
    assert config.extra.generate == {"typical_p": 0.9}


def test_quantization_constraints():
    invalid("exclusive", quantization={"load_in_4bit": True, "load_in_8bit": True})
    invalid("bnb_4bit_quant_type only apply with load_in_4bit", quantization={"bnb_4bit_quant_type": "nf4"})
    invalid("llm_int8_threshold only applies with load_in_8bit", quantization={"load_in_4bit": True, "llm_int8_threshold": 5})
    invalid("quantization.extra.load_in_4bit is a typed field", quantization={"load_in_8bit": True, "extra": {"load_in_4bit": True}})
    invalid("quantization.extra needs", quantization={"extra": {"llm_int8_skip_modules": []}})
    assert TransformersConfig().quantization.bnb_kwargs() == {}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num_beams": 0}, "greater than or equal to 1"),
        ({"use_cache": False, "cache_implementation": "static"}, "needs use_cache: true"),
        ({"max_cache_len": 64}, "max_cache_len only applies with cache_implementation static"),
        ({"max_memory": {0: "10GiB"}}, "max_memory only applies with a spreading device_map"),
        ({"offload_folder": "/tmp/x", "device_map": "cpu"}, "offload_folder only applies"),
        ({"torch_compile_backend": "inductor"}, "torch_compile_backend needs torch_compile"),
        ({"assistant_model": "tiny-llama", "prompt_lookup_num_tokens": 3}, "exclusive"),
        ({"assistant_model": "tiny-llama", "num_beams": 2}, "does not combine with num_beams"),
        ({"num_assistant_tokens": 4}, "num_assistant_tokens needs assistant_model"),
        ({"assistant_weights": "random"}, "assistant_weights needs assistant_model"),
        ({"max_matching_ngram_size": 2}, "needs prompt_lookup_num_tokens"),
        ({"quantized_cache": {"nbits": 4}}, "quantized_cache needs cache_implementation: quantized"),
        ({"num_beams": 2, "num_return_sequences": 3}, "cannot exceed num_beams"),
        ({"device_map": "gpu0"}, "neither a device"),
        ({"device_map": {}}, "empty mapping"),
        ({"attn_implementation": "flash"}, "Input should be"),
        ({"use_mtp": True, "assistant_early_exit": 2}, "exclusive"),
    ],
)
def test_real_constraints(values, message):
    invalid(message, **values)


@pytest.mark.parametrize("device_map", ["auto", "balanced", "cpu", "cuda", "cuda:1", "0", {"model.layers.0": 0, "lm_head": "cpu"}])
def test_device_maps_accepted(device_map):
    TransformersConfig(device_map=device_map)


def test_beam_only_settings_without_beams_are_advisories_not_errors():
    config = TransformersConfig(length_penalty=1.5, early_stopping=True)
    assert config.advisories() == [
        "transformers.length_penalty has no effect with num_beams: 1",
        "transformers.early_stopping has no effect with num_beams: 1",
    ]
    assert TransformersConfig(num_beams=2, length_penalty=1.5).advisories() == []
