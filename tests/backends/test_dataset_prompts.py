"""Prompts from a dataset saved to disk (``Dataset.save_to_disk``), cached for offline runs."""

from __future__ import annotations

import pytest

from pytest_llenergy.backends.datasets import cache_file, dataset_texts
from pytest_llenergy.backends.errors import PromptSourceError
from pytest_llenergy.backends.workload import build_workload
from pytest_llenergy.config.experiment import PromptDataset, WorkloadConfig

datasets = pytest.importorskip("datasets")

ROWS = {"instruction": [f"Explain topic number {i}." for i in range(10)], "output": ["..."] * 10}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LEM_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "alpaca-like"
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(path))
    return path


def test_first_n_rows_of_the_detected_text_column(saved):
    texts = dataset_texts(PromptDataset(dataset=str(saved), n=3))
    assert texts == ROWS["instruction"][:3]


def test_texts_are_cached_and_read_back_without_the_dataset(saved):
    import shutil

    spec = PromptDataset(dataset=str(saved), field="instruction")
    first = dataset_texts(spec)
    assert cache_file(spec).is_file() and len(first) == 10
    cached = cache_file(spec)
    shutil.rmtree(saved)
    saved.mkdir()  # same path, now empty: the key is unchanged and the cache answers
    assert cache_file(spec) == cached and dataset_texts(spec) == first


def test_relative_paths_resolve_next_to_the_campaign(saved):
    assert dataset_texts(PromptDataset(dataset=saved.name, n=1), base_dir=saved.parent) == ROWS["instruction"][:1]


def test_split_of_a_dataset_dict(tmp_path):
    path = tmp_path / "gsm8k-like"
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"question": ["What is 2+2?", "And 3+3?"],
                                                                "answer": ["4", "6"]})}).save_to_disk(str(path))
    assert dataset_texts(PromptDataset(dataset=str(path), split="test")) == ["What is 2+2?", "And 3+3?"]
    with pytest.raises(PromptSourceError, match="no split 'train' \\(has test\\)"):
        dataset_texts(PromptDataset(dataset=str(path)))


def test_missing_column_names_the_columns(saved):
    with pytest.raises(PromptSourceError, match="no column 'prompt' \\(columns: instruction, output\\); set field:"):
        dataset_texts(PromptDataset(dataset=str(saved), field="prompt"))


def test_campaign_syntax_and_workload(saved):
    config = WorkloadConfig.model_validate({"prompts": {"dataset": str(saved), "n": 4}, "num_prompts": 6,
                                            "input_tokens": 8, "batch_size": 3})
    assert isinstance(config.prompts, PromptDataset)
    workload = build_workload(config, vocab_size=100, special_ids=[0],
                              encode=lambda texts, n: [[len(t) % 90 + 1] * min(n, 3) for t in texts])
    assert len(workload.texts) == 6 and workload.texts[4] == ROWS["instruction"][0]  # 4 texts cycled to 6


def test_unknown_keys_are_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        WorkloadConfig.model_validate({"prompts": {"dataset": "x", "rows": 3}})


def test_hub_names_pass_subset_and_split_to_load_dataset(monkeypatch):
    calls = []

    def fake_load_dataset(name, subset=None, split=None):
        calls.append((name, subset, split))
        return datasets.Dataset.from_dict({"question": ["q1", "q2", "q3"]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    spec = PromptDataset(dataset="openai/gsm8k", subset="main", split="test", field="question", n=2)
    assert dataset_texts(spec) == ["q1", "q2"] and calls == [("openai/gsm8k", "main", "test")]
