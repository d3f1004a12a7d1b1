"""The GPU priming burst before an NVML baseline: a failure is recorded, never swallowed."""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any

import pytest

from pytest_llenergy.energy import priming
from pytest_llenergy.plugin.measurement import context as ctx


def _torch(available: bool, fail: BaseException | None = None) -> types.ModuleType:
    torch: Any = types.ModuleType("torch")

    def ones(*args: Any, **kwargs: Any) -> Any:
        if fail is not None:
            raise fail
        import numpy as np

        return np.ones((2, 2))

    torch.ones = ones
    torch.cuda = types.SimpleNamespace(is_available=lambda: available, synchronize=lambda: None)
    return torch


@pytest.mark.parametrize(("torch", "expected"), [
    (_torch(True), None),
    (_torch(False), "no GPU priming burst before the baseline: torch sees no CUDA device"),
    (_torch(True, RuntimeError("CUDA error: out of memory")),
     "GPU priming burst before the baseline failed: RuntimeError: CUDA error: out of memory"),
])
def test_prime_reports_why_it_did_not_run(monkeypatch: pytest.MonkeyPatch, torch: Any, expected: str | None) -> None:
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert priming.prime_gpu() == expected


def test_other_errors_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _torch(True, KeyError("a bug")))
    with pytest.raises(KeyError):
        priming.prime_gpu()


def test_a_failed_prime_is_flagged_and_warned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _torch(True, RuntimeError("CUDA error: launch failure")))
    context = ctx.MeasurementContext(config=None, settings=None)  # type: ignore[arg-type]
    with pytest.warns(RuntimeWarning, match="llenergy: GPU priming burst before the baseline failed"):
        context.primer.prime()
    assert context.primed is False and "launch failure" in context.prime_problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context.primer.prime()  # the same problem again: no second warning
    monkeypatch.setitem(sys.modules, "torch", _torch(True))
    context.primer.prime()
    assert context.primed is True and context.prime_problem == ""


class _Cache:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:  # noqa: A003
        self.data[key] = value


class _Config:
    def __init__(self, worker: bool) -> None:
        self.cache = _Cache()
        if worker:
            self.workerinput: dict[str, Any] = {}
            self.workeroutput: dict[str, Any] = {}

    def getoption(self, name: str, default: Any = None) -> Any:
        return default


@pytest.mark.parametrize("worker", [False, True])
def test_the_plugins_baseline_store(worker: bool) -> None:
    """The energy layer is handed this store: the controller writes pytest's cache, a worker hands its
    entries to the controller (workeroutput) and reads them back from memory."""
    config = _Config(worker)
    store = ctx.PytestBaselineStore(config)  # type: ignore[arg-type]
    assert store.get("llenergy/baseline/gpu-0") is None
    config.cache.data["llenergy/baseline/gpu-1"] = {"power_w": 80.0}
    assert store.get("llenergy/baseline/gpu-1") == {"power_w": 80.0}
    store.set("llenergy/baseline/gpu-0", {"power_w": 120.0})
    assert store.get("llenergy/baseline/gpu-0") == {"power_w": 120.0}
    written = config.workeroutput["lem_baseline"] if worker else config.cache.data
    assert written["llenergy/baseline/gpu-0"] == {"power_w": 120.0}
    assert ("llenergy/baseline/gpu-0" in config.cache.data) is not worker  # only the controller writes the cache
