"""Helpers for the backend tests: tiny random experiments and a spy for ``generate``."""

from __future__ import annotations

from typing import Any

from pytest_llenergy.config.experiment import ExperimentConfig
from pytest_llenergy.config.paths import set_path

TINY = {"name": "tiny-llama", "weights": "random"}
SMALL_WORKLOAD = {"num_prompts": 2, "batch_size": 2, "input_tokens": 8, "output_tokens": 4}


def experiment_at(paths: dict[str, Any]) -> ExperimentConfig:
    """A tiny-llama random experiment with ``paths`` (dotted keys) applied."""
    data: dict[str, Any] = {"model": dict(TINY), "workload": dict(SMALL_WORKLOAD)}
    for key, value in paths.items():
        if isinstance(value, dict) and key in data and isinstance(data[key], dict):
            data[key] = {**data[key], **value}
        else:
            set_path(data, key, value)
    return ExperimentConfig.model_validate(data)


class GenerateSpy:
    """Stands in for ``model.generate``: records keywords, calls through or fakes the output."""

    def __init__(self, real: Any, call_through: bool) -> None:
        self.real = real
        self.call_through = call_through
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if self.call_through:
            return self.real(**kwargs)
        import torch

        ids = kwargs["input_ids"]
        rows = ids.shape[0] * kwargs.get("num_return_sequences", 1)
        ids = ids.repeat_interleave(kwargs.get("num_return_sequences", 1), dim=0)
        new = torch.full((rows, kwargs["max_new_tokens"]), 7, dtype=ids.dtype)
        return torch.cat([ids, new], dim=1)

    @property
    def last(self) -> dict[str, Any]:
        return self.calls[-1]


def spy_generate(monkeypatch, session, call_through: bool = False) -> GenerateSpy:
    spy = GenerateSpy(session.model.generate, call_through)
    monkeypatch.setattr(session.model, "generate", spy)
    return spy
