"""ReplaySource: exact virtual counter, looping, scaling, multi-device traces, specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_llenergy.energy.sources import DEFAULT_TRACE, ReplaySource, resolve_source
from pytest_llenergy.energy.sources.replay import load_trace

from .conftest import META, exact_integral, trace_arrays, window


def test_shipped_trace_and_meta() -> None:
    assert DEFAULT_TRACE.is_file() and DEFAULT_TRACE.with_name("h200_trace_meta.json").is_file()
    t, p = load_trace(DEFAULT_TRACE)
    assert p.shape == (t.size, 1) and t.size == 2137 == META["n_samples"]
    src = ReplaySource()
    assert src.meta["gpu"] == "NVIDIA H200"
    assert src.devices()[0].label == "replay0" and src.devices()[0].uuid.startswith("replay-")
    assert (src.kind, src.simulated, src.estimated, src.has_counter) == ("replay", True, False, True)


@pytest.mark.parametrize("phase", ["generate_start", "matmul_start", "idle_start"])
def test_counter_is_the_exact_trace_integral(phase: str) -> None:
    w = window(phase)
    src = ReplaySource()
    e = src.energy_between(w["t_start_s"], w["t_end_s"])[0]
    assert e == pytest.approx(exact_integral(w["t_start_s"], w["t_end_s"]), rel=1e-6)
    assert e == pytest.approx(w["trace_integral_j"], rel=0.005)


def test_loop_and_hold() -> None:
    t, p = trace_arrays()
    total = float(np.trapezoid(p, t))
    looped = ReplaySource()
    assert looped.energy_between(t[0], t[0] + 3 * looped.period_s)[0] == pytest.approx(3 * total)
    assert looped.power_at(t[0] + looped.period_s + 1.0) == pytest.approx(looped.power_at(t[0] + 1.0))
    held = ReplaySource(loop=False)
    assert held.energy_between(t[-1], t[-1] + 2.0)[0] == pytest.approx(2.0 * p[-1])
    assert held.energy_between(t[0], t[-1])[0] == pytest.approx(total)


def test_scale_devices_and_speed(fake_clock) -> None:
    src = ReplaySource(scale=1.1, devices=2, clock=fake_clock, start_s=10.0, speed=4.0)
    assert src.clock() == pytest.approx(10.0)
    base = ReplaySource()
    assert src.power_at(12.0) == pytest.approx([1.1 * base.power_at(12.0)[0]] * 2)
    fake_clock.advance(0.5)  # 2 trace seconds at speed 4
    assert src.clock() == pytest.approx(12.0)
    assert src.read_power() == pytest.approx(src.power_at(12.0))
    assert src.read_counters() - src.energy_at(10.0) == pytest.approx(1.1 * base.energy_between(10.0, 12.0)[0])
    with pytest.raises(ValueError):
        ReplaySource(scale=0)


def test_multi_column_trace(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("t_s,power_w_1,power_w_0\n0,20,10\n1,20,30\n2,40,10\n")
    src = ReplaySource(path, loop=False)
    assert [d.label for d in src.devices()] == ["replay0", "replay1"]
    assert src.energy_between(0.0, 2.0) == pytest.approx([40.0, 50.0])
    assert src.power_at(0.5) == pytest.approx([20.0, 20.0])
    assert len(ReplaySource(path, devices=1).devices()) == 1
    with pytest.raises(ValueError, match="2 device columns, 3 asked"):
        ReplaySource(path, devices=3)
    bad = tmp_path / "bad.csv"
    bad.write_text("time,watts\n0,1\n1,2\n")
    with pytest.raises(ValueError, match="no t_s column"):
        ReplaySource(bad)


def test_drain_emulates_driver_buffer(fake_clock) -> None:
    src = ReplaySource(clock=fake_clock, start_s=6.0)
    t, p = src.drain_power_samples()
    assert t[0] > 6.0 - 2.5 and t[-1] <= 6.0 and p.shape == (t.size, 1)
    tt, pp = trace_arrays()
    assert np.isin(np.round(t, 4), np.round(tt, 4)).all()
    fake_clock.advance(1.0)
    t1, _ = src.drain_power_samples(since=t[-1])
    assert t1[0] > t[-1] and t1[-1] <= 7.0 and t1.size == pytest.approx(50, abs=1)
    fake_clock.advance(10.0)  # longer than the history: the oldest samples are gone
    t2, _ = src.drain_power_samples(since=t1[-1])
    assert t2[0] > 17.0 - 2.5 - 1e-9 and t2[-1] <= 17.0
    fake_clock.advance(src.period_s)  # across the loop boundary: one period of samples
    t3, _ = ReplaySource(clock=fake_clock, history_s=1e3).drain_power_samples()
    assert t3.size > 0


@pytest.mark.parametrize(
    ("spec", "scale", "name"),
    [("replay", 1.0, "h200_trace.csv"), ("replay?scale=1.1", 1.1, "h200_trace.csv"),
     (f"replay:{DEFAULT_TRACE}?scale=0.9&speed=2", 0.9, "h200_trace.csv")],
)
def test_replay_specs(spec: str, scale: float, name: str) -> None:
    src, reason = resolve_source(spec)
    assert isinstance(src, ReplaySource) and src.scale == scale and src.path.name == name
    assert reason == f"replay: {name} x{scale:g} (1 device)"


@pytest.mark.parametrize("spec", ["replay:", "replay?bogus=1", "replay?scale=abc", "gpu", "replayx"])
def test_bad_specs_are_value_errors(spec: str) -> None:
    with pytest.raises(ValueError):
        resolve_source(spec)


def test_missing_trace_is_a_source_error(tmp_path: Path) -> None:
    from pytest_llenergy.energy.sources import SourceError

    with pytest.raises(SourceError, match="replay trace not readable"):
        resolve_source(f"replay:{tmp_path / 'nope.csv'}")
    src, _ = resolve_source(f"REPLAY:{DEFAULT_TRACE}")
    assert src.path == DEFAULT_TRACE
