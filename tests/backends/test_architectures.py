"""Shipped architecture configs and the in-code tokenizer."""

from __future__ import annotations

import json

import pytest

from pytest_llenergy.backends.architectures import (
    resolve_architecture,
    shipped_config,
    shipped_names,
)
from pytest_llenergy.backends.errors import BackendError

# published parameter counts (millions), counted on the meta device: nothing is allocated
PUBLISHED_MILLIONS = {
    "gpt2": 124.4,
    "smollm2-135m": 134.5,
    "qwen2.5-0.5b": 494.0,
    "llama-3.2-1b": 1235.8,
    "llama-3.1-8b": 8030.3,
    "mistral-7b": 7241.7,
}


@pytest.mark.slow
def test_the_promised_architectures_are_shipped():
    assert set(PUBLISHED_MILLIONS) | {"tiny-gpt2", "tiny-llama", "tiny-llama-hd32"} == set(shipped_names())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED_MILLIONS) + ["tiny-gpt2", "tiny-llama", "tiny-llama-hd32"])
def test_shipped_config_parses_with_published_size(name):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    values = shipped_config(name)
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    with torch.device("meta"):  # no memory, no weights: just the architecture
        model = AutoModelForCausalLM.from_config(config)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    if name in PUBLISHED_MILLIONS:
        assert millions == pytest.approx(PUBLISHED_MILLIONS[name], abs=0.1)
    else:
        assert millions < 1 and config.vocab_size >= 259


def test_local_config_directory_and_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(shipped_config("tiny-gpt2")))
    values, origin = resolve_architecture(str(tmp_path))
    assert values["model_type"] == "gpt2" and origin.endswith("config.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"hidden_size": 3}')
    with pytest.raises(BackendError, match="model_type"):
        resolve_architecture(str(bad))


def test_unknown_name_lists_what_is_shipped():
    with pytest.raises(BackendError) as info:
        resolve_architecture("llama-9000")
    for name in shipped_names():
        assert name in str(info.value)


def test_builtin_tokenizer_is_deterministic_and_fits():
    from pytest_llenergy.backends.tokenizer import EOS_ID, PAD_ID, build_tokenizer

    small = build_tokenizer(1024)
    assert len(small) <= 1024
    assert (small.pad_token_id, small.eos_token_id, small.padding_side) == (PAD_ID, EOS_ID, "left")
    text = "Energy per token, measured carefully: 42 J. Ünïcode ✓"
    ids = small(text)["input_ids"]
    assert max(ids) < 1024 and small.decode(ids) == text
    assert build_tokenizer(1024)(text)["input_ids"] == ids
    large = build_tokenizer(128256)
    assert len(large) <= 4096 and len(large(text)["input_ids"]) <= len(ids)
    with pytest.raises(BackendError):
        build_tokenizer(100)
