"""Fixtures for the energy-layer unit tests (CPU only, fast)."""

from __future__ import annotations

import json
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pytest_llenergy.energy.sources import DEFAULT_TRACE
from pytest_llenergy.energy.sources.base import BaseSource, DeviceInfo, SourceError

from .fake_pynvml import FakeNvml

TRACE = DEFAULT_TRACE
META = json.loads(TRACE.with_name("h200_trace_meta.json").read_text())


class FakeClock:
    """A clock the test advances by hand (thread-safe)."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def advance(self, dt: float) -> None:
        with self._lock:
            self.t += dt

    sleep = advance


class ScriptedSource(BaseSource):
    """A source whose power (and temperature) are functions of its clock; optional failure."""

    kind = "nvml"
    has_counter = False

    def __init__(self, power: Callable[[float], list[float]], *, n: int = 1,
                 temp: Callable[[float], list[float]] | None = None,
                 fail_after: float | None = None, clock: Callable[[], float] | None = None,
                 stall: tuple[float, float] | None = None) -> None:
        import time

        super().__init__(clock or time.monotonic)
        self._power, self._temp, self._n = power, temp, n
        self._t0 = self.clock()
        self.fail_after, self.stall = fail_after, stall
        self.reads = 0
        self.stalled = False
        self.failed = False

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(f"gpu{i}", "Scripted", f"GPU-scripted-{i}", i) for i in range(self._n)]

    def _t(self) -> float:
        t = self.clock() - self._t0
        if self.fail_after is not None and t >= self.fail_after:
            self.failed = True
            raise SourceError("gpu0: power failed: GPU is lost")
        return t

    def read_power(self) -> np.ndarray:
        import time

        t = self._t()
        self.reads += 1
        if self.stall and not self.stalled and t >= self.stall[0]:  # the first read from stall[0] on stalls
            self.stalled = True
            time.sleep(self.stall[1])
        return np.asarray(self._power(t), dtype=float)

    def read_aux(self) -> dict[str, np.ndarray]:
        if self._temp is None:
            return {}
        return {"temperature_c": np.asarray(self._temp(self._t()), dtype=float)}


class Store(dict):
    """A dict-backed stand-in for pytest's cache (JSON round trip, like the real one)."""

    def get_(self, key: str) -> dict | None:
        raw = self.get(key)
        return None if raw is None else json.loads(raw)

    def set_(self, key: str, value: dict) -> None:
        self[key] = json.dumps(value)

    @property
    def api(self) -> types.SimpleNamespace:
        """This dict as the ``BaselineStore`` a ``BaselineCache`` is given."""
        return types.SimpleNamespace(get=self.get_, set=self.set_)


def wait_for(event: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Poll until ``event()`` holds (tests wait for events, never for a fixed time)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not event():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:g} s"
        time.sleep(0.005)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def install_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeNvml]:
    """Install a FakeNvml as ``pynvml``; returns a factory taking FakeNvml's arguments."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def install(*args: object, **kwargs: object) -> FakeNvml:
        fake = FakeNvml(*args, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setitem(sys.modules, "pynvml", fake.module)
        return fake

    return install


@pytest.fixture
def no_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import pynvml`` fail like on a machine without the NVIDIA library."""
    fake = FakeNvml(init_error=12)
    monkeypatch.setitem(sys.modules, "pynvml", fake.module)


def window(name: str) -> dict:
    """A phase window of the shipped trace's meta file, by its ``from`` name."""
    return next(w for w in META["windows"] if w["from"] == name)


def trace_arrays() -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(TRACE, delimiter=",", skiprows=1)
    return data[:, 0], data[:, 1]


def exact_integral(a: float, b: float) -> float:
    """Reference: the piecewise-linear trace integrated over exactly [a, b] (fine grid)."""
    t, p = trace_arrays()
    grid = np.linspace(a, b, 200_001)
    return float(np.trapezoid(np.interp(grid, t, p), grid))


ROOT = Path(__file__).parent
