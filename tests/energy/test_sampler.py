"""Sampler: rate validation, polling, driver buffer, gaps, failures, buffers, frames."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pytest_llenergy.energy.sampler import Sampler, _Growable
from pytest_llenergy.energy.sources import NvmlSource, ReplaySource

from .conftest import ScriptedSource, wait_for
from .fake_pynvml import FakeGpu


@pytest.mark.parametrize("hz", [0, 0.5, 101, 1000])
def test_rate_is_validated(hz: float) -> None:
    with pytest.raises(ValueError, match="1..100 Hz"):
        Sampler(ScriptedSource(lambda t: [1.0]), hz)


def test_growable_buffer_doubles() -> None:
    buf = _Growable(2, capacity=2)
    for i in range(5):
        buf.append(float(i), np.array([i, -i]))
    buf.extend(np.arange(5.0, 12.0), np.ones((7, 2)))
    t, v = buf.arrays()
    assert t.tolist() == list(range(12)) and v.shape == (12, 2) and buf.t.size >= 12
    assert v[4].tolist() == [4, -4]


def test_polling_collects_at_the_nominal_rate() -> None:
    src = ScriptedSource(lambda t: [100.0 + t, 50.0], n=2, temp=lambda t: [40.0, 41.0])
    s = Sampler(src, 50, aux_hz=10)
    s.start()
    wait_for(lambda: src.reads >= 12, "12th sample")
    ts = s.stop()
    assert s.mode == "poll" and ts.nominal_hz == 50 and ts.labels == ("gpu0", "gpu1")
    # polling on a 20 ms schedule never reads faster: at most one sample per period (+ the first)
    assert 12 <= ts.n <= ts.duration_s * 50 + 1 and ts.power_w.shape == (ts.t_s.size, 2)
    assert ts.t_s[0] >= 0 and ts.t_s[-1] == pytest.approx(ts.duration_s, abs=0.02)
    assert np.all(np.diff(ts.t_s) > 0) and ts.error is None  # (gaps: load-dependent here)
    assert ts.aux["temperature_c"].shape == ts.power_w.shape  # held onto every power sample
    assert src.reads >= ts.n and ts.thread_cpu_s >= 0


def test_driver_buffer_mode_with_replay(fake_clock) -> None:
    src = ReplaySource(clock=fake_clock, start_s=6.0, history_s=60)
    s = Sampler(src, 10)
    s.start()
    assert s.mode == "driver"
    fake_clock.advance(3.0)
    time.sleep(0.05)
    ts = s.stop()
    assert 145 <= ts.n <= 155 and ts.nominal_hz == pytest.approx(50, rel=0.05)
    assert ts.t_s[0] <= 0 and ts.t_s[-1] <= ts.duration_s + 1e-9 and ts.gaps == 0
    assert ts.duration_s == pytest.approx(3.0)


def test_driver_buffer_can_be_disabled(fake_clock) -> None:
    s = Sampler(ReplaySource(clock=fake_clock), 10, use_driver_buffer=False)
    s.start()
    ts = s.stop()
    assert s.mode == "poll" and ts.n >= 1


def test_nvml_driver_samples_and_aux(install_nvml) -> None:
    install_nvml([FakeGpu(0, power=200.0, memory_used_mb=5000)])
    src = NvmlSource()
    s = Sampler(src, 10)
    s.start()
    time.sleep(0.3)
    ts = s.stop()
    assert s.mode == "driver" and ts.n >= 12
    assert np.allclose(ts.power_w, 200.0) and np.allclose(ts.aux["memory_used_mb"], 5000)


def test_gaps_are_counted() -> None:
    src = ScriptedSource(lambda t: [10.0], stall=(0.1, 0.2))  # one 200 ms stall at 50 Hz
    s = Sampler(src, 50)
    s.start()
    wait_for(lambda: src.stalled and src.reads >= 2, "stall and a read after it")
    ts = s.stop()
    assert ts.gaps >= 1


def test_source_failure_keeps_partial_samples() -> None:
    src = ScriptedSource(lambda t: [42.0], fail_after=0.15)
    s = Sampler(src, 50)
    s.start()
    wait_for(lambda: src.failed, "source failure")
    ts = s.stop()
    assert ts.error == "gpu0: power failed: GPU is lost"
    # every kept sample was read before the failure at 0.15 s of the source's clock (started earlier)
    assert 1 <= ts.t_s.size == src.reads and ts.t_s[-1] < 0.15 and np.allclose(ts.power_w, 42.0)


def test_unexpected_exception_is_reported_not_raised() -> None:
    def boom(t: float) -> list[float]:
        raise ZeroDivisionError("bad")

    s = Sampler(ScriptedSource(boom), 10)
    s.start()
    ts = s.stop()
    assert ts.error == "ZeroDivisionError: bad" and ts.t_s.size == 0


def test_start_stop_misuse() -> None:
    s = Sampler(ScriptedSource(lambda t: [1.0]), 10)
    with pytest.raises(RuntimeError):
        s.stop()
    s.start()
    with pytest.raises(RuntimeError):
        s.start()
    s.stop()
    s.start()  # reusable
    assert s.stop().error is None


def test_to_frame_long_format() -> None:
    src = ScriptedSource(lambda t: [1.0, 2.0], n=2, temp=lambda t: [30.0, 31.0])
    s = Sampler(src, 20)
    s.start()
    wait_for(lambda: src.reads >= 2, "second sample")
    df = s.stop().to_frame(window="w")
    assert list(df.columns) == ["window", "t_s", "device", "power_w", "temperature_c"]
    assert set(df.device) == {"gpu0", "gpu1"}
    assert df[df.device == "gpu1"].power_w.eq(2.0).all()
    assert df[df.device == "gpu0"].temperature_c.eq(30.0).all()
