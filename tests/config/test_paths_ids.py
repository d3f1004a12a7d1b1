"""Dotted config paths and experiment ids (fast, no pytest run inside)."""

from __future__ import annotations

import pytest

from pytest_llenergy.config import ExperimentConfig
from pytest_llenergy.config.ids import HASH_CHARS, config_hash, experiment_id, model_slug
from pytest_llenergy.config.paths import check_path, deep_merge, set_path


@pytest.mark.parametrize("path, problem", [
    ("precision", None), ("workload.batch_size", None), ("model.name", None),
    ("precison", "unknown key"), ("workload.batchsize", "unknown key 'batchsize'"),
    ("precision.x", "precision has no sub-fields"), ("workload.batch_size.x", "workload.batch_size has no sub-fields"),
])
def test_check_path(path, problem):
    assert check_path(ExperimentConfig, path) == problem


def test_set_path_creates_and_replaces_levels():
    target = {"model": "gpt2", "workload": 3}
    set_path(target, "model.weights", "random")
    set_path(target, "workload.batch_size", [1])
    set_path(target, "a.b.c", 1)
    assert target == {"model": {"name": "gpt2", "weights": "random"}, "workload": {"batch_size": [1]}, "a": {"b": {"c": 1}}}
    value = {"k": [1]}
    set_path(target, "top", value)
    value["k"].append(2)
    assert target["top"] == {"k": [1]}  # a copy, not the caller's object
    other = {"x": "gpt2"}
    set_path(other, "x.y", 1)  # only `model` expands a string into {"name": ...}
    assert other == {"x": {"y": 1}}


def test_deep_merge():
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": [1], "f": 1}
    over = {"a": {"c": {"x": 3}, "b": {"n": 1}}, "e": [2], "g": {"h": 1}}
    merged = deep_merge(base, over)
    assert merged == {"a": {"b": {"n": 1}, "c": {"d": 2, "x": 3}}, "e": [2], "f": 1, "g": {"h": 1}}
    assert base == {"a": {"b": 1, "c": {"d": 2}}, "e": [1], "f": 1}  # inputs untouched
    merged["g"]["h"] = 9
    assert over["g"] == {"h": 1}


@pytest.mark.parametrize("name, slug", [
    ("meta-llama/Llama-3.2-1B", "llama-3.2-1b"), ("gpt2", "gpt2"), ("org/Model_Name v2/", "model-name-v2"),
    ("///", "model"), ("a/..x..", "x"), ("Qwen/Qwen2.5-0.5B-Instruct", "qwen2.5-0.5b-instruct"),
])
def test_model_slug(name, slug):
    assert model_slug(name) == slug


def test_experiment_id_and_hash():
    config = ExperimentConfig.model_validate({"model": "gpt2", "precision": "bfloat16", "workload": {"batch_size": 8}})
    digest = config_hash(config)
    assert len(digest) == HASH_CHARS == 8 and int(digest, 16) >= 0
    assert experiment_id(config) == f"transformers-gpt2-bs8-bf16-{digest}"
    named = config.model_copy(update={"name": "mine"})
    assert config_hash(named) == digest  # the label does not change the hash
    assert experiment_id(named) == f"mine-{digest}"
    other = ExperimentConfig.model_validate({"model": "gpt2", "precision": "bfloat16", "workload": {"batch_size": 4}})
    assert config_hash(other) != digest
    for precision, short in (("float32", "fp32"), ("float16", "fp16")):
        c = ExperimentConfig.model_validate({"model": "gpt2", "precision": precision})
        assert f"-{short}-" in experiment_id(c)
