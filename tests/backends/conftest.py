"""Fixtures for the backend tests: one thread, the backend, a tiny stand-in model, a from_pretrained spy."""

from __future__ import annotations

import os

# One intra-op thread: tiny models are faster that way, and a busy 2-core box does not thrash.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from typing import Any  # noqa: E402

import pytest  # noqa: E402

from .helpers import experiment_at  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _single_thread_torch():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def backend():
    from pytest_llenergy.backends.transformers.backend import TransformersBackend

    return TransformersBackend()


@pytest.fixture(scope="session")
def tiny_model():
    """A real tiny-llama built through the backend once (a stand-in for faked loads)."""
    from pytest_llenergy.backends.transformers.backend import TransformersBackend

    session = TransformersBackend().load(experiment_at({}))
    yield session.model


class LoadSpy:
    """Records every ``from_pretrained`` call; ``fake=True`` returns the stand-in model instead."""

    def __init__(self, stand_in: Any) -> None:
        self.calls: list[tuple[str, tuple, dict[str, Any]]] = []
        self.fake = False
        self.stand_in = stand_in

    @property
    def last(self) -> dict[str, Any]:
        return self.calls[-1][2]


@pytest.fixture
def load_spy(monkeypatch, tiny_model):
    import copy

    import transformers
    from transformers.modeling_utils import PreTrainedModel

    spy = LoadSpy(tiny_model)
    original_model = PreTrainedModel.from_pretrained.__func__
    original_auto = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def model_level(cls, *args, **kwargs):
        spy.calls.append((cls.__name__, args, dict(kwargs)))
        if spy.fake:
            return copy.deepcopy(spy.stand_in)
        return original_model(cls, *args, **kwargs)

    def auto_level(cls, *args, **kwargs):
        if spy.fake:
            spy.calls.append(("AutoModelForCausalLM", args, dict(kwargs)))
            return copy.deepcopy(spy.stand_in)
        return original_auto(cls, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(model_level))
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", classmethod(auto_level))
    return spy
