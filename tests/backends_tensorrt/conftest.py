"""Fixtures for the TensorRT-LLM backend tests: the fake ``tensorrt_llm`` (tests/fakes) on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.backends.session import IMPORT_PROBLEMS
from pytest_llenergy.config.experiment import ExperimentConfig
from pytest_llenergy.config.paths import set_path

ROOT = Path(__file__).resolve().parent.parent.parent
FAKE_DIR = ROOT / "tests" / "fakes" / "fake_tensorrt_llm"
FAKE_GPU = "sm90-NVIDIA H200 (fake)"
MODEL = {"name": "fake-org/fake-model", "weights": "pretrained"}
WORKLOAD = {"num_prompts": 4, "batch_size": 2, "input_tokens": 8, "output_tokens": 5}


def experiment(tensorrt: dict[str, Any] | None = None, **paths: Any) -> ExperimentConfig:
    data: dict[str, Any] = {"backend": "tensorrt", "model": dict(MODEL), "precision": "float16",
                            "workload": dict(WORKLOAD)}
    if tensorrt is not None:
        data["tensorrt"] = tensorrt
    for key, value in paths.items():
        set_path(data, key.replace("__", "."), value)
    return ExperimentConfig.model_validate(data)


def _modules() -> dict[str, Any]:
    return {k: v for k, v in sys.modules.items() if k == "tensorrt_llm" or k.startswith("tensorrt_llm.")}


@pytest.fixture
def fake_trt(monkeypatch, tmp_path):
    """The fake tensorrt_llm importable, a fake GPU visible, the engine cache in the test's temp dir."""
    from pytest_llenergy.backends.tensorrt import backend as tensorrt_backend

    saved = _modules()
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(FAKE_DIR))
    monkeypatch.delitem(IMPORT_PROBLEMS, "tensorrt_llm", raising=False)
    monkeypatch.setattr(tensorrt_backend, "gpu_architecture", lambda: FAKE_GPU)
    monkeypatch.setenv("LEM_CACHE_DIR", str(tmp_path / "lem-cache"))
    import tensorrt_llm

    assert tensorrt_llm.__version__.endswith("+fake")
    tensorrt_llm.CALLS.clear()
    try:
        yield tensorrt_llm
    finally:
        for name in _modules():
            del sys.modules[name]
        sys.modules.update(saved)
        sys.path.remove(str(FAKE_DIR))


def calls(fake: Any, kind: str) -> list[dict[str, Any]]:
    return [kwargs for name, kwargs in fake.CALLS if name == kind]
