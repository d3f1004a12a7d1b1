"""The transformers session end to end on tiny random models: counts, prompts, streaming, keys, errors."""

from __future__ import annotations

import json
import sys

import pytest

from pytest_llenergy.backends.base import BackendError, GenerationStats, Session
from pytest_llenergy.config.experiment import WorkloadConfig

from .helpers import experiment_at

pytestmark = pytest.mark.requires("torch")  # real torch models: LEM_REQUIRE=torch in CI counts these


def run(session, **workload):
    config = session.experiment.workload.model_copy(update=workload) if workload else session.experiment.workload
    config = WorkloadConfig.model_validate(config.model_dump())
    return session.run(session.prepare(config))


def test_available_without_importing_torch(backend):
    assert backend.available() == (True, "")


@pytest.mark.slow
def test_session_follows_the_protocol(backend):
    session = backend.load(experiment_at({}))
    assert isinstance(session, Session)
    assert session.load_time_s > 0
    info = session.engine_info
    for key in ("torch", "transformers", "device", "dtype", "from_pretrained_kwargs", "generate_kwargs", "num_parameters"):
        assert key in info
    json.dumps(info)  # recordable as is
    session.close()
    session.close()
    with pytest.raises(BackendError, match="closed"):
        session.run(session.experiment and None or _dummy_workload())


def _dummy_workload():
    from pytest_llenergy.backends.base import Workload

    return Workload(batches=[[[5, 6]]], output_tokens=2)


def test_synthetic_exact_counts(backend):
    session = backend.load(experiment_at({"workload": {"num_prompts": 5, "batch_size": 2, "input_tokens": 7, "output_tokens": 5}}))
    session.keep_output_ids = True
    stats = session.run(session.prepare(session.experiment.workload))
    assert isinstance(stats, GenerationStats)
    assert (stats.num_prompts, stats.input_tokens, stats.output_tokens) == (5, 35, 25)
    assert [len(ids) for ids in stats.output_token_ids] == [5] * 5
    assert len(stats.batch_latencies_s) == 3 and stats.duration_s >= sum(stats.batch_latencies_s) * 0.99
    assert stats.latency_mode == "per_batch" and stats.ttft_s is None and stats.itl_s is None
    assert stats.peak_memory_bytes and stats.peak_memory_scope == "process_peak_rss"
    assert not [w for w in stats.warnings if "generated other than" in w]


def test_builtin_prompts_exact_counts(backend):
    session = backend.load(experiment_at({"model.name": "tiny-gpt2", "workload": {
        "prompts": "builtin", "num_prompts": 6, "batch_size": 3, "input_tokens": 40, "output_tokens": 3}}))
    prepared = session.prepare(session.experiment.workload)
    lengths = [len(p) for batch in prepared.batches for p in batch]
    assert max(lengths) <= 40 and len(set(lengths)) > 1  # varied lengths, left-padded together
    stats = session.run(prepared)
    assert stats.input_tokens == sum(lengths)
    assert stats.output_tokens == 6 * 3
    ids, mask = prepared.engine_inputs[0]
    assert ids.shape == mask.shape and mask[:, -1].all()  # left padding: last column always real
    assert (mask.sum(dim=1).tolist()) == lengths[:3]


def test_left_padding_does_not_change_greedy_output(backend):
    session = backend.load(experiment_at({"model.name": "tiny-gpt2", "transformers.attn_implementation": "eager"}))
    session.keep_output_ids = True
    from pytest_llenergy.backends.base import Workload

    short, long = [11, 12, 13], [21, 22, 23, 24, 25, 26, 27]
    together = session.run(Workload(batches=[[short, long]], output_tokens=4))
    alone = session.run(Workload(batches=[[short]], output_tokens=4))
    assert together.output_token_ids[0] == alone.output_token_ids[0]


def test_file_prompts_run(backend, tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "hello there"}\n{"text": "a longer prompt about energy and tokens"}\n')
    session = backend.load(experiment_at({"workload": {"prompts": {"file": "prompts.jsonl"}, "num_prompts": 3,
                                                       "batch_size": 3, "input_tokens": 64, "output_tokens": 2}}))
    prepared = session.prepare(session.experiment.workload, base_dir=tmp_path)
    assert prepared.texts == ["hello there", "a longer prompt about energy and tokens", "hello there"]
    assert session.run(prepared).output_tokens == 6


def test_relative_prompt_file_resolves_from_the_session_base_dir(backend, tmp_path, monkeypatch):
    (tmp_path / "campaign").mkdir()
    (tmp_path / "campaign" / "prompts.jsonl").write_text('{"prompt": "hello there"}\n{"prompt": "energy"}\n')
    monkeypatch.chdir(tmp_path)  # not where the prompt file is
    session = backend.load(experiment_at({"workload": {"prompts": {"file": "prompts.jsonl"}, "num_prompts": 2,
                                                       "batch_size": 2, "input_tokens": 64, "output_tokens": 2}}))
    with pytest.raises(BackendError, match="prompts.jsonl"):
        session.prepare(session.experiment.workload)
    session.base_dir = tmp_path / "campaign"  # what the plugin sets: the campaign file's folder
    assert session.prepare(session.experiment.workload).texts == ["hello there", "energy"]


def test_file_prompt_errors_surface(backend, tmp_path):
    session = backend.load(experiment_at({}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{broken\n')
    with pytest.raises(BackendError, match=r"bad.jsonl:2"):
        session.prepare(WorkloadConfig(prompts={"file": str(bad)}))
    with pytest.raises(BackendError, match="not found"):
        session.prepare(WorkloadConfig(prompts={"file": str(tmp_path / "missing.txt")}))


def test_sorted_batching_runs_longest_first(backend, tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("one\nthis one is clearly the longest prompt of them all\ntwo words\nmedium sized prompt here\n")
    settings = {"workload": {"prompts": {"file": str(path)}, "num_prompts": 4, "batch_size": 2, "input_tokens": 64, "output_tokens": 2}}
    static = backend.load(experiment_at(settings)).prepare(experiment_at(settings).workload)
    ranked = backend.load(experiment_at({**settings, "transformers.batching_strategy": "sorted"}))
    prepared = ranked.prepare(ranked.experiment.workload)
    lengths = [len(p) for batch in prepared.batches for p in batch]
    assert lengths == sorted(lengths, reverse=True)
    assert prepared.texts[0].startswith("this one is clearly")
    assert static.texts[0] == "one"
    assert ranked.run(prepared).output_tokens == 8


@pytest.mark.slow
def test_streaming_records_ttft_and_itl(backend):
    session = backend.load(experiment_at({"workload": {"streaming": True, "batch_size": 1, "num_prompts": 3,
                                                       "input_tokens": 6, "output_tokens": 5}}))
    stats = session.run(session.prepare(session.experiment.workload))
    assert stats.latency_mode == "streaming"
    assert len(stats.ttft_s) == 3 and all(t > 0 for t in stats.ttft_s)
    assert len(stats.itl_s) == 3 * 4 and all(t >= 0 for t in stats.itl_s)
    assert stats.output_tokens == 15
    assert all(t <= lat for t, lat in zip(stats.ttft_s, stats.batch_latencies_s))


def test_streaming_rejects_beams(backend):
    session = backend.load(experiment_at({"transformers.num_beams": 2}))
    with pytest.raises(BackendError, match="one sequence per prompt"):
        session.prepare(WorkloadConfig(streaming=True, batch_size=1))


def test_speculative_needs_batch_one(backend):
    session = backend.load(experiment_at({"transformers.prompt_lookup_num_tokens": 3}))
    with pytest.raises(BackendError, match="batch_size 1"):
        session.prepare(WorkloadConfig(batch_size=2, num_prompts=2))


def test_assisted_generation_exact_counts(backend):
    session = backend.load(experiment_at({"workload": {"batch_size": 1, "num_prompts": 2, "input_tokens": 6, "output_tokens": 9},
                                          "transformers.assistant_model": "tiny-llama", "transformers.num_assistant_tokens": 4}))
    assert session.assistant is not None
    assert session.engine_info["assistant"]["model"] == "tiny-llama"
    assert session.run(session.prepare(session.experiment.workload)).output_tokens == 18


def test_seed_fixes_weights_prompts_and_sampling(backend):
    def outputs(seed, sample=False):
        settings = {"workload.seed": seed, "workload.output_tokens": 6}
        if sample:
            settings.update({"decoder.do_sample": True, "decoder.temperature": 1.0})
        session = backend.load(experiment_at(settings))
        session.keep_output_ids = True
        prepared = session.prepare(session.experiment.workload)
        return prepared.batches, session.run(prepared).output_token_ids, session

    prompts_a, out_a, session_a = outputs(1)
    prompts_b, out_b, _ = outputs(1)
    prompts_c, _, session_c = outputs(2)
    assert (prompts_a, out_a) == (prompts_b, out_b)
    assert prompts_a != prompts_c
    import torch

    assert not torch.equal(session_a.model.lm_head.weight, session_c.model.lm_head.weight)
    _, sampled_a, _ = outputs(3, sample=True)
    _, sampled_b, _ = outputs(3, sample=True)
    assert sampled_a == sampled_b


def test_load_key_equal_only_when_shareable(backend):
    key = backend.load_key
    base = experiment_at({})
    assert key(base) == key(experiment_at({}))
    assert key(base) == key(experiment_at({"workload.batch_size": 1, "workload.output_tokens": 9}))
    for different in (
        {"precision": "bfloat16"},
        {"model.name": "tiny-gpt2"},
        {"workload.seed": 1},
        {"transformers.attn_implementation": "eager"},
        {"transformers.extra.load": {"use_safetensors": True}},
        {"decoder.preset": "standard"},
        {"transformers.num_beams": 2},
    ):
        assert key(base) != key(experiment_at(different)), different
    pretrained = {"model": {"name": "org/m", "weights": "pretrained"}}
    assert key(experiment_at(pretrained)) == key(experiment_at({**pretrained, "workload.seed": 5}))


def test_random_weights_reject_pretrained_only_fields(backend):
    with pytest.raises(BackendError, match="model.revision applies to pretrained"):
        backend.load(experiment_at({"model.revision": "main"}))


def test_unknown_random_model_lists_shipped_names(backend):
    with pytest.raises(BackendError, match=r"shipped: .*llama-3\.1-8b.*tiny-llama"):
        backend.load(experiment_at({"model.name": "not-a-model"}))


def test_quantization_without_bitsandbytes_is_a_clear_error(backend):
    pytest.importorskip("torch")
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here")
    with pytest.raises(BackendError, match="bitsandbytes"):
        backend.load(experiment_at({"transformers.quantization.load_in_4bit": True}))


def test_missing_flash_attention_is_an_error_not_a_fallback(backend):
    from transformers.utils import is_flash_attn_2_available

    if is_flash_attn_2_available():
        pytest.skip("flash-attn is available here")
    with pytest.raises(BackendError, match="flash_attention_2.*no silent fallback"):
        backend.load(experiment_at({"transformers.attn_implementation": "flash_attention_2"}))


def test_spreading_device_map_without_accelerate_is_an_error(backend, monkeypatch):
    monkeypatch.setitem(sys.modules, "accelerate", None)  # as if not installed: find_spec gives None
    with pytest.raises(BackendError, match="device_map 'auto' needs the accelerate package"):
        backend.load(experiment_at({"transformers.device_map": "auto"}))


def test_greedy_with_sampling_knobs_warns(backend):
    session = backend.load(experiment_at({"decoder.top_k": 7, "transformers.length_penalty": 2.0}))
    assert any("decoder.top_k=7 has no effect" in w for w in session.load_warnings)
    assert any("length_penalty has no effect" in w for w in session.load_warnings)
    assert "top_k" not in session.engine_info["generate_kwargs"]
    stats = run(session)
    assert any("top_k" in w for w in stats.warnings)


def test_pretrained_local_checkpoint_runs(backend, tmp_path):
    from pytest_llenergy.backends.tokenizer import build_tokenizer

    random = backend.load(experiment_at({}))
    random.model.generation_config.do_sample = True
    random.model.generation_config.temperature = 0.6
    random.model.save_pretrained(tmp_path)
    build_tokenizer(random.model.config.vocab_size).save_pretrained(tmp_path)
    session = backend.load(experiment_at({"model": {"name": str(tmp_path), "weights": "pretrained"},
                                          "workload": {"prompts": "builtin", "num_prompts": 2, "batch_size": 2,
                                                       "input_tokens": 12, "output_tokens": 3}}))
    assert session.engine_info["model_generation_defaults_ignored"] == {"do_sample": True, "temperature": 0.6}
    assert session.engine_info["generate_kwargs"]["do_sample"] is False
    stats = run(session)
    assert stats.output_tokens == 6
    assert session.engine_info["tokenizer"] == str(tmp_path)


def _early_eos_generate(session):
    import torch

    def generate(**kwargs):
        ids = kwargs["input_ids"]
        new = torch.full((ids.shape[0], kwargs["max_new_tokens"]), 9, dtype=ids.dtype)
        new[0, 1] = session.eos_ids[0]  # the first sequence stops after two tokens
        return torch.cat([ids, new], dim=1)

    return generate


def test_inexact_counts_fail_greedy_and_warn_otherwise(backend, monkeypatch):
    greedy = backend.load(experiment_at({}))
    monkeypatch.setattr(greedy.model, "generate", _early_eos_generate(greedy))
    with pytest.raises(BackendError, match="must be exact: 1 of 2 sequences generated other than 4 tokens"):
        run(greedy)
    sampled = backend.load(experiment_at({"decoder.do_sample": True, "decoder.temperature": 1.0}))
    monkeypatch.setattr(sampled.model, "generate", _early_eos_generate(sampled))
    stats = run(sampled)
    assert stats.output_tokens == 2 + 4
    assert any("1 of 2 sequences generated other than 4 tokens" in w for w in stats.warnings)
