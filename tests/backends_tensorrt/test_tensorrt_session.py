"""The TensorRT-LLM session on the fake engine: availability, the engine cache, runs and streaming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llenergy.backends import session as engine_session
from pytest_llenergy.backends.base import BackendError
from pytest_llenergy.backends.tensorrt import backend as tensorrt_backend
from pytest_llenergy.backends.tensorrt.backend import ENGINE_MARKER, TensorrtBackend

from .conftest import FAKE_GPU, calls, experiment


class TestAvailability:
    def test_not_installed_names_the_reason(self, monkeypatch):
        monkeypatch.setattr(engine_session, "find_spec", lambda name: None)
        ok, reason = TensorrtBackend().available()
        assert not ok and "tensorrt_llm is not installed" in reason and "pypi.nvidia.com" in reason

    def test_without_a_gpu_it_is_unavailable(self, fake_trt, monkeypatch):
        monkeypatch.setattr(tensorrt_backend, "gpu_architecture", lambda: None)
        ok, reason = TensorrtBackend().available()
        assert not ok and "no CUDA GPU is visible" in reason

    def test_available_with_the_fake_and_a_gpu(self, fake_trt):
        assert TensorrtBackend().available() == (True, "")

    def test_load_refuses_when_unavailable(self, monkeypatch):
        monkeypatch.setattr(engine_session, "find_spec", lambda name: None)
        with pytest.raises(BackendError, match="not installed"):
            TensorrtBackend().load(experiment(None))

    def test_registered_as_builtin(self):
        from pytest_llenergy.backends.base import get_backend

        assert get_backend("tensorrt").name == "tensorrt"


class TestEngineCache:
    def test_build_then_hit_then_force_rebuild(self, fake_trt):
        exp = experiment({"max_batch_size": 8})
        first = TensorrtBackend().load(exp)
        assert first.engine_info["engine_cache"] == "built"
        engine_dir = Path(first.engine_info["engine_dir"])
        meta = json.loads((engine_dir / ENGINE_MARKER).read_text())
        assert meta["key"]["gpu"] == FAKE_GPU and meta["key"]["tensorrt_llm"].endswith("+fake")
        assert meta["key"]["build"]["build"] == {"max_batch_size": 8}
        assert (engine_dir / "fake_engine.json").is_file()
        first.close()

        second = TensorrtBackend().load(exp)
        llm = calls(fake_trt, "LLM")[-1]
        assert second.engine_info["engine_cache"] == "hit" and llm["prebuilt"] is True
        assert llm["model"] == str(engine_dir) and "build_config" not in llm
        assert llm["tokenizer"] == "fake-org/fake-model"
        saves = len(calls(fake_trt, "save"))

        third = TensorrtBackend().load(experiment({"max_batch_size": 8, "force_rebuild": True}))
        assert third.engine_info["engine_cache"] == "rebuilt (force_rebuild)"
        assert calls(fake_trt, "LLM")[-1]["prebuilt"] is False and len(calls(fake_trt, "save")) == saves + 1
        assert third.engine_info["engine_key"] == first.engine_info["engine_key"]

    def test_key_follows_build_settings_not_runtime_ones(self, fake_trt):
        def key(section):
            return TensorrtBackend().load(experiment(section)).engine_info["engine_key"]

        base = key({"max_batch_size": 8})
        assert key({"max_batch_size": 8, "kv_cache_free_gpu_memory_fraction": 0.5, "enable_block_reuse": False}) == base
        assert key({"max_batch_size": 16}) != base
        assert key({"max_batch_size": 8, "quantization": "fp8"}) != base
        assert key({"max_batch_size": 8, "extra": {"build": {"use_refit": True}}}) != base
        assert key({"max_batch_size": 8, "tp_size": 2}) != base

    def test_key_follows_gpu_version_precision_and_model(self, fake_trt, monkeypatch):
        def key(**paths):
            return TensorrtBackend().load(experiment(None, **paths)).engine_info["engine_key"]

        base = key()
        assert key(precision="bfloat16") != base
        assert key(model__revision="v2") != base
        monkeypatch.setattr(tensorrt_backend, "gpu_architecture", lambda: "sm80-NVIDIA A100")
        assert key() != base
        monkeypatch.setattr(fake_trt, "__version__", "0.21.0")
        assert key() != base

    def test_engine_cache_dir_is_honoured(self, fake_trt, tmp_path):
        session = TensorrtBackend().load(experiment({"engine_cache_dir": str(tmp_path / "engines")}))
        assert Path(session.engine_info["engine_dir"]).parent == tmp_path / "engines"
        assert (tmp_path / "engines" / session.engine_info["engine_key"] / ENGINE_MARKER).is_file()


class TestRun:
    def test_batches_go_in_as_token_ids_with_exact_counts(self, fake_trt):
        exp = experiment(None)
        session = TensorrtBackend().load(exp)
        workload = session.prepare(exp.workload)
        stats = session.run(workload)
        sent = [p for c in calls(fake_trt, "generate") for p in c["inputs"]]
        assert sent == [p for b in workload.batches for p in b]
        assert (stats.input_tokens, stats.output_tokens) == (32, 20)
        assert stats.latency_mode == "per_batch" and stats.ttft_s is None and len(stats.batch_latencies_s) == 2
        session.close()
        session.close()
        assert len(calls(fake_trt, "shutdown")) == 1
        with pytest.raises(BackendError, match="closed"):
            session.run(workload)

    def test_streaming_measures_ttft_and_itl_per_token(self, fake_trt):
        exp = experiment(None, workload={"num_prompts": 2, "batch_size": 1, "input_tokens": 6, "output_tokens": 4,
                                         "streaming": True})
        session = TensorrtBackend().load(exp)
        stats = session.run(session.prepare(exp.workload))
        assert all(c["streaming"] for c in calls(fake_trt, "generate_async"))
        assert stats.latency_mode == "streaming"
        assert len(stats.ttft_s) == 2 and len(stats.itl_s) == 2 * 3
        assert stats.output_tokens == 8

    def test_text_workload_uses_the_engine_tokenizer(self, fake_trt):
        exp = experiment(None, workload={"prompts": "builtin", "num_prompts": 3, "batch_size": 3, "input_tokens": 6,
                                         "output_tokens": 2})
        session = TensorrtBackend().load(exp)
        workload = session.prepare(exp.workload)
        assert all(len(p) <= 6 and p[0] == 1 for b in workload.batches for p in b)
        assert session.run(workload).input_tokens == workload.input_tokens

    def test_engine_info_records_the_plan(self, fake_trt):
        session = TensorrtBackend().load(experiment({"max_batch_size": 8, "kv_cache_free_gpu_memory_fraction": 0.6}))
        session.prepare(session.experiment.workload)
        info = session.engine_info
        assert info["tensorrt_llm"].endswith("+fake") and info["gpu_architecture"] == FAKE_GPU
        assert info["plan"]["build"] == {"max_batch_size": 8}
        assert info["plan"]["kv_cache"] == {"free_gpu_memory_fraction": 0.6}
        assert info["sampling_kwargs"]["max_tokens"] == 5 and info["llm_class"] == "tensorrt_llm.LLM"

    def test_load_key_ignores_only_the_workload(self):
        backend = TensorrtBackend()
        assert backend.load_key(experiment(None)) == backend.load_key(experiment(None, workload__batch_size=4))
        assert backend.load_key(experiment(None)) != backend.load_key(experiment({"beam_width": 2}))


def test_random_weights_build_from_the_saved_checkpoint(fake_trt, monkeypatch, tmp_path):
    from pytest_llenergy.backends import checkpoint as engine_checkpoint

    class Config:
        def to_dict(self):
            return {"vocab_size": 512, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}

    monkeypatch.setattr(engine_checkpoint, "random_model_config", lambda name: (Config(), "shipped:x"))
    monkeypatch.setattr(engine_checkpoint, "random_checkpoint", lambda name, precision, seed: (
        Path(tmp_path), {"checkpoint": str(tmp_path), "checkpoint_key": f"ck-{precision}-{seed}"}))
    exp = experiment(None, model={"name": "tiny-llama", "weights": "random"}, workload__seed=2)
    session = TensorrtBackend().load(exp)
    workload = session.prepare(exp.workload)
    assert calls(fake_trt, "LLM")[-1]["model"] == str(tmp_path)
    meta = json.loads((Path(session.engine_info["engine_dir"]) / ENGINE_MARKER).read_text())
    assert meta["key"]["model"] == {"random": "tiny-llama", "checkpoint_key": "ck-float16-2"}
    assert all(0 <= t < 512 and t > 2 for b in workload.batches for p in b for t in p)


def test_relative_prompt_file_resolves_from_the_session_base_dir(fake_trt, tmp_path, monkeypatch):
    (tmp_path / "campaign").mkdir()
    (tmp_path / "campaign" / "prompts.jsonl").write_text('{"prompt": "hello there"}\n{"prompt": "energy"}\n')
    monkeypatch.chdir(tmp_path)  # not where the prompt file is
    exp = experiment(None, workload={"prompts": {"file": "prompts.jsonl"}, "num_prompts": 2, "batch_size": 2,
                                     "input_tokens": 64, "output_tokens": 2})
    session = TensorrtBackend().load(exp)
    with pytest.raises(BackendError, match="prompts.jsonl"):
        session.prepare(exp.workload)
    session.base_dir = tmp_path / "campaign"  # what the plugin sets: the campaign file's folder
    assert session.prepare(exp.workload).texts == ["hello there", "energy"]
