"""Fixtures for the vLLM backend tests: the fake ``vllm`` on sys.path, experiments, the real-vLLM environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.backends.session import IMPORT_PROBLEMS
from pytest_llenergy.config.experiment import ExperimentConfig
from pytest_llenergy.config.paths import set_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FAKE_DIR = HERE / "fake_vllm"
#: a tiny Llama vLLM's CPU attention accepts (head size 32; the shipped tiny-llama has 16)
TINY_HD32 = "tiny-llama-hd32"
PRETRAINED = {"name": "fake-org/fake-model", "weights": "pretrained"}
WORKLOAD = {"num_prompts": 4, "batch_size": 2, "input_tokens": 8, "output_tokens": 5}


def experiment(vllm: dict[str, Any] | None = None, **paths: Any) -> ExperimentConfig:
    """A vllm experiment on the fake pretrained model; ``paths`` are dotted keys (``decoder.top_k``)."""
    data: dict[str, Any] = {"backend": "vllm", "model": dict(PRETRAINED), "workload": dict(WORKLOAD)}
    if vllm is not None:
        data["vllm"] = vllm
    for key, value in paths.items():
        set_path(data, key.replace("__", "."), value)
    return ExperimentConfig.model_validate(data)


def _vllm_modules() -> dict[str, Any]:
    return {k: v for k, v in sys.modules.items() if k == "vllm" or k.startswith("vllm.")}


@pytest.fixture
def fake_vllm(monkeypatch, tmp_path):
    """The fake vllm package imported as ``vllm`` (any real one set aside and restored afterwards)."""

    saved = _vllm_modules()
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(FAKE_DIR))
    monkeypatch.delitem(IMPORT_PROBLEMS, "vllm", raising=False)
    monkeypatch.setenv("LEM_CACHE_DIR", str(tmp_path / "lem-cache"))
    import vllm

    assert vllm.__version__.endswith("+fake"), vllm.__file__
    vllm.CALLS.clear()
    try:
        yield vllm
    finally:
        for name in _vllm_modules():
            del sys.modules[name]
        sys.modules.update(saved)
        sys.path.remove(str(FAKE_DIR))


def calls(fake: Any, kind: str) -> list[dict[str, Any]]:
    return [kwargs for name, kwargs in fake.CALLS if name == kind]


def real_vllm_reason() -> str | None:
    """None when the real vllm imports here, else why the real-engine tests skip."""
    try:
        import vllm
    except Exception as exc:  # noqa: BLE001 - any import failure is a skip reason
        return f"vllm is not importable here ({type(exc).__name__}: {exc}); run scripts/ci_vllm.sh"
    if str(getattr(vllm, "__version__", "")).endswith("+fake"):
        return "the fake vllm is loaded"
    return None


@pytest.fixture(scope="session")
def real_vllm_env(tmp_path_factory):
    """Environment for a real CPU engine in this process: fast start, caches inside the test's temp dir."""
    reason = real_vllm_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("vllm-env")
    values = {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_HOST_IP": "127.0.0.1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CACHE_ROOT": str(base / "vllm-cache"),
        "TORCHINDUCTOR_CACHE_DIR": str(base / "inductor"),
        "TMPDIR": str(base / "tmp"),
        "LEM_CACHE_DIR": str(base / "lem-cache"),
        "HF_HUB_OFFLINE": "1",
    }
    (base / "tmp").mkdir()
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield base
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
