"""Prompt sources, cycling, ordering and batching (no model needed)."""

from __future__ import annotations

import pytest

from pytest_llenergy.backends.workload import (
    PromptSourceError,
    build_workload,
    builtin_texts,
    cycled,
    order_and_batch,
    prompt_texts,
    read_prompt_file,
    synthetic_prompts,
)
from pytest_llenergy.config.experiment import WorkloadConfig


def fake_encode(texts, max_tokens):
    return [[len(word) for word in text.split()][:max_tokens] for text in texts]


def test_synthetic_prompts_are_exact_seeded_and_avoid_special_ids():
    specials = [0, 1, 2]
    a = synthetic_prompts(20, 17, 50, specials, seed=3)
    assert len(a) == 20 and all(len(p) == 17 for p in a)
    assert not {t for p in a for t in p} & set(specials)
    assert all(0 <= t < 50 for p in a for t in p)
    assert a == synthetic_prompts(20, 17, 50, specials, seed=3)
    assert a != synthetic_prompts(20, 17, 50, specials, seed=4)


def test_builtin_set_is_varied():
    texts = builtin_texts()
    assert len(texts) == 200 and len(set(texts)) == 200
    words = sorted(len(t.split()) for t in texts)
    assert words[0] <= 6 and words[-1] >= 140


def test_txt_and_jsonl_files(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("first prompt\n\n  \nsecond prompt\n")
    assert read_prompt_file(txt) == ["first prompt", "second prompt"]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"text": "a"}\n\n{"prompt": "b", "id": 3}\n')
    assert read_prompt_file("p.jsonl", base_dir=tmp_path) == ["a", "b"]
    assert prompt_texts({"file": str(jsonl)}) == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", "", r"empty.txt: no prompts"),
        ("blank.jsonl", "\n  \n", r"blank.jsonl: no prompts"),
        ("bad.jsonl", '{"text": "ok"}\n{"text": oops}\n', r"bad.jsonl:2: not valid JSON"),
        ("nofield.jsonl", '{"text": "ok"}\n{"body": "x"}\n', r"nofield.jsonl:2: no `text` or `prompt` field \(keys: body\)"),
        ("list.jsonl", '["x"]\n', r"list.jsonl:1: expected an object"),
        ("number.jsonl", '{"text": 5}\n', r"number.jsonl:1: `text` must be a string, not int"),
        ("emptytext.jsonl", '{"prompt": "  "}\n', r"emptytext.jsonl:1: `prompt` is empty"),
        ("prompts.csv", "a,b\n", r"prompts.csv: prompt files are .txt"),
    ],
)
def test_file_errors_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PromptSourceError, match=message):
        read_prompt_file(path)


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(PromptSourceError, match=r"nope.txt: prompt file not found"):
        read_prompt_file(tmp_path / "nope.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    with pytest.raises(PromptSourceError, match=r"latin.txt: not UTF-8"):
        read_prompt_file(latin)


def test_cycling_and_truncation():
    assert cycled(["a", "b"], 5) == ["a", "b", "a", "b", "a"]
    assert cycled(["a", "b", "c"], 2) == ["a", "b"]
    config = WorkloadConfig(prompts="builtin", num_prompts=205, input_tokens=4, batch_size=50)
    workload = build_workload(config, vocab_size=10, special_ids=[], encode=fake_encode)
    assert workload.num_prompts == 205 and [len(b) for b in workload.batches] == [50, 50, 50, 50, 5]
    assert max(len(p) for b in workload.batches for p in b) == 4
    assert workload.texts[200] == workload.texts[0]
    assert workload.seed == 0 and workload.output_tokens == config.output_tokens


def test_sorted_order_is_longest_first_and_stable():
    prompts = [[1], [1, 2, 3], [1, 2], [4, 5, 6], [7]]
    batches, texts, order = order_and_batch(prompts, 2, "sorted", list("abcde"))
    assert order == [1, 3, 2, 0, 4]
    assert texts == ["b", "d", "c", "a", "e"]
    assert batches == [[[1, 2, 3], [4, 5, 6]], [[1, 2], [1]], [[7]]]
    static, _, static_order = order_and_batch(prompts, 2, "static")
    assert static_order == [0, 1, 2, 3, 4] and static[0] == [[1], [1, 2, 3]]


def test_synthetic_workload_shape():
    config = WorkloadConfig(num_prompts=7, input_tokens=5, batch_size=3, output_tokens=2, seed=9)
    workload = build_workload(config, vocab_size=100, special_ids=[0])
    assert [len(b) for b in workload.batches] == [3, 3, 1]
    assert workload.input_tokens == 35 and workload.texts is None


def test_text_sources_need_an_encoder():
    with pytest.raises(Exception, match="tokenizer"):
        build_workload(WorkloadConfig(prompts="builtin"), vocab_size=10, special_ids=[])
