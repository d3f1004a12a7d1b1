"""EnergyMeter windows: accuracy on the H200 trace, flags, baseline, tokens, faults, output."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from pytest_llenergy.energy import (
    BaselineReading,
    EnergyMeter,
    EstimateSource,
    NvmlSource,
    ReplaySource,
)
from pytest_llenergy.results.schema import DeviceEnergy, WindowEnergy

from .conftest import ScriptedSource, exact_integral, wait_for, window
from .fake_pynvml import FakeGpu


def replay_window(fake_clock, phase: str, **meter_kw):
    w = window(phase)
    src = ReplaySource(clock=fake_clock, start_s=w["t_start_s"], history_s=60)
    meter = EnergyMeter(src, **meter_kw)
    with meter.measure(phase) as win:
        fake_clock.advance(w["t_end_s"] - w["t_start_s"])
        time.sleep(0.02)  # let the sampler thread run once
    return w, meter, win.result


@pytest.mark.parametrize("phase", ["generate_start", "matmul_start", "idle_start", "generate_end"])
def test_replay_phase_matches_trace_integral(fake_clock, phase: str) -> None:
    w, _, m = replay_window(fake_clock, phase)
    assert m.duration_s == pytest.approx(w["t_end_s"] - w["t_start_s"])
    assert m.counter_energy_j == pytest.approx(exact_integral(w["t_start_s"], w["t_end_s"]), rel=1e-6)
    assert m.counter_energy_j == pytest.approx(w["trace_integral_j"], rel=0.005)
    assert m.integral_energy_j == pytest.approx(w["trace_integral_j"], rel=0.005)
    assert abs(m.disagreement_pct) < 0.1 and m.energy_j == m.counter_energy_j
    assert m.n_samples == w["n_samples"] and m.sample_hz == pytest.approx(50, rel=0.05)
    assert m.flags == [] and m.simulated and not m.estimated
    assert m.mean_power_w == pytest.approx(m.energy_j / m.duration_s)


def test_polling_a_time_compressed_replay() -> None:
    w = window("generate_start")
    src = ReplaySource(start_s=w["t_start_s"], speed=4.0)
    reads, read_power = [], src.read_power
    src.read_power = lambda: reads.append(1) or read_power()  # count the sampler's readings
    meter = EnergyMeter(src, sample_hz=50, use_driver_buffer=False)
    wall = time.monotonic()
    with meter.measure() as win:
        inside = src.clock()  # trace time just after the window opened
        wait_for(lambda: src.clock() - inside >= 2.0 and len(reads) >= 50, "2 trace seconds, 50 readings")
    wall = time.monotonic() - wall
    m = win.result
    assert 2.0 <= m.duration_s <= 4.0 * wall  # trace seconds (4x the wall seconds), not wall seconds
    assert 50 <= m.n_samples <= 50 * m.duration_s + 1  # 50 Hz of trace time, never faster
    assert m.integral_energy_j == pytest.approx(m.counter_energy_j, rel=0.10)


def test_baseline_adjusted_and_per_token_figures(fake_clock) -> None:
    baseline = BaselineReading(power_w={"replay0": 120.0})
    w, _, m = replay_window(fake_clock, "generate_start", baseline=baseline)
    assert m.baseline_power_w == 120.0
    assert m.adjusted_energy_j == pytest.approx(m.energy_j - 120.0 * m.duration_s)
    assert m.devices[0].adjusted_energy_j == pytest.approx(m.adjusted_energy_j)
    src = ReplaySource(clock=fake_clock, start_s=w["t_start_s"], history_s=60)
    meter = EnergyMeter(src, baseline=baseline)
    with meter.measure("gen") as win:
        win.record(input_tokens=32 * 128)
        win.record(output_tokens=32 * 80)
        win.record(output_tokens=32 * 80)
        fake_clock.advance(w["t_end_s"] - w["t_start_s"])
    m = win.result
    assert (m.input_tokens, m.output_tokens) == (4096, 5120)
    assert m.energy_per_output_token_j == pytest.approx(m.energy_j / 5120)
    assert m.energy_per_token_j == pytest.approx(m.energy_j / 9216)
    assert m.adjusted_energy_per_output_token_j == pytest.approx(m.adjusted_energy_j / 5120)
    assert m.adjusted_energy_per_token_j == pytest.approx(m.adjusted_energy_j / 9216)


def test_no_tokens_means_no_per_token_figures(fake_clock) -> None:
    _, _, m = replay_window(fake_clock, "idle_start")
    assert m.energy_per_output_token_j is None and m.energy_per_token_j is None


def test_short_window_flag_and_uncertainty(install_nvml, fake_clock) -> None:
    install_nvml([FakeGpu(0, power=300.0)], clock=fake_clock, samples=False)
    meter = EnergyMeter(NvmlSource(clock=fake_clock), sample_hz=10)
    with meter.measure("short"):
        fake_clock.advance(0.5)  # the clock jumps: no two reads bracket a counter update
    m = meter.windows[-1]
    assert "short_window" in m.flags and "edge_phase_unknown" in m.flags
    assert m.counter_energy_j == pytest.approx(150.0) and m.energy_j == m.counter_energy_j
    assert m.edge_corrected is False and m.edge_method == "counter"
    # one uniform counter step at each edge: mean power x period / sqrt(6)
    assert m.uncertainty_j == pytest.approx(300.0 * 0.1 / 6**0.5)
    assert m.uncertainty_parts_j["counter_quantisation"] == pytest.approx(m.uncertainty_j)
    with meter.measure("long"):
        fake_clock.advance(1.5)
    assert "short_window" not in meter.windows[-1].flags
    assert meter.windows[-1].uncertainty_j == pytest.approx(m.uncertainty_j)  # absolute joules: same steps
    _, _, m = replay_window(fake_clock, "generate_start")
    assert "short_window" not in m.flags and m.edge_method == "counter" and m.uncertainty_j == 0.0
    src = ReplaySource(clock=fake_clock, start_s=10.0, history_s=60)
    with EnergyMeter(src).measure() as win:
        fake_clock.advance(0.1)  # replay: exact counter, sampler period (20 ms) decides
    assert "short_window" in win.result.flags


def test_throttle_differencing_and_aux_figures(install_nvml, fake_clock) -> None:
    gpus = [FakeGpu(0, power=690.0, violation={0: 0.5}, temperature_c=70, memory_used_mb=9000),
            FakeGpu(1, power=300.0, violation={1: 0.25})]
    install_nvml(gpus, clock=fake_clock, samples=False)
    meter = EnergyMeter(NvmlSource(clock=fake_clock))
    with meter.measure():
        fake_clock.advance(2.0)
        time.sleep(0.03)
    m = meter.windows[-1]
    d0, d1 = m.devices
    assert d0.counter_energy_j == pytest.approx(1380.0) and d1.counter_energy_j == pytest.approx(600.0)
    assert m.counter_energy_j == pytest.approx(1980.0)
    assert d0.throttle_s["power"] == pytest.approx(1.0) and d0.throttle_s["thermal"] == 0.0
    assert d1.throttle_s["thermal"] == pytest.approx(0.5)
    assert m.throttle_s["power"] == pytest.approx(1.0) and m.throttle_s["thermal"] == pytest.approx(0.5)
    assert m.throttled is True
    assert (d0.peak_memory_mb, d0.mean_utilization_pct, d0.max_temperature_c) == (9000.0, 90.0, 70.0)
    assert m.peak_power_w == pytest.approx(990.0)


def test_unthrottled_window(install_nvml, fake_clock) -> None:
    install_nvml([FakeGpu(0, violation={4: 1.0})], clock=fake_clock, samples=False)
    with EnergyMeter(NvmlSource(clock=fake_clock)).measure() as win:
        fake_clock.advance(1.0)
    assert win.result.throttle_s["low_utilization"] == pytest.approx(1.0)
    assert win.result.throttled is False


@pytest.mark.parametrize("driver_samples", [False, True])
def test_gpu_lost_mid_window_keeps_partial_samples(install_nvml, driver_samples: bool) -> None:
    fake = install_nvml([FakeGpu(0, power=250.0)], samples=driver_samples)
    meter = EnergyMeter(NvmlSource(), sample_hz=50)
    started = time.monotonic()
    with meter.measure("lost") as win:
        reading, count = ("samples", 1) if driver_samples else ("field_values", 6)  # how power is read
        wait_for(lambda: fake.calls.get(reading, 0) >= count, f"power reading {count} ({reading})")
        calls = sum(fake.calls.values())
        lost_at = time.monotonic() - started
        fake.lost_after = fake.now()  # the GPU falls off the bus now
        wait_for(lambda: sum(fake.calls.values()) > calls, "a device call after the loss")
    m = win.result
    assert any(f.startswith("source_error:gpu0:") and "GPU is lost" in f for f in m.flags)
    assert "counter_unavailable" in m.flags and m.counter_energy_j is None
    if not driver_samples:  # polled until the loss; the driver buffer died with the GPU
        assert m.n_samples >= 5 and meter.series("lost").t_s[-1] < lost_at
    assert m.energy_j == m.integral_energy_j == pytest.approx(250.0 * m.duration_s, rel=0.01)


def test_nested_windows_share_the_driver_buffer(install_nvml) -> None:
    install_nvml([FakeGpu(0, power=lambda t: 100.0 + 200.0 * t), FakeGpu(1, power=50.0)])
    meter = EnergyMeter(NvmlSource())
    with meter.measure("outer") as outer:
        time.sleep(0.1)
        with meter.measure("inner") as inner:
            time.sleep(0.3)
        time.sleep(0.1)
    for w in (outer, inner):
        m, ts = w.result, meter.series(w.name)
        assert m.n_samples >= 0.8 * 50 * m.duration_s and ts.gaps == 0 and ts.mode == "driver"
        # the counter moves in 100 ms steps: it can differ by one step at each edge
        assert abs(m.integral_energy_j - m.counter_energy_j) <= 2 * 0.1 * m.peak_power_w
        assert m.devices[1].integral_energy_j == pytest.approx(50.0 * m.duration_s, rel=1e-6)
    assert [m.name for m in meter.windows] == ["inner", "outer"]


def test_aborted_body_closes_window_and_propagates() -> None:
    meter = EnergyMeter(ReplaySource(start_s=8.0), sample_hz=20)
    with pytest.raises(KeyError), meter.measure("boom") as win:
        time.sleep(0.05)
        raise KeyError("inside")
    assert win.result is not None and "aborted" in win.result.flags
    assert meter.windows[-1] is win.result and win.result.energy_j > 0


def test_cuda_sync_at_both_edges_and_sync_failure() -> None:
    calls = []
    meter = EnergyMeter(ReplaySource(), cuda_sync=lambda: calls.append(time.monotonic()))
    with meter.measure():
        pass
    assert len(calls) == 2

    def failing() -> None:
        if len(calls) >= 3:
            raise RuntimeError("CUDA error: device-side assert")
        calls.append(0)

    meter = EnergyMeter(ReplaySource(), cuda_sync=failing)
    with pytest.raises(RuntimeError, match="device-side"), meter.measure() as win:
        pass
    assert "aborted" in win.result.flags


def test_estimate_labelled_and_never_baseline_adjusted() -> None:
    meter = EnergyMeter(EstimateSource(10.0), sample_hz=20,
                        baseline=BaselineReading(power_w={"cpu-estimate": 5.0}))
    with meter.measure() as win:
        sum(i * i for i in range(300_000))
        time.sleep(0.1)
    d = win.result.to_dict()
    assert d["estimated"] is True and d["source"] == "estimate"
    assert "counter_unavailable" not in d["flags"] and d["counter_energy_j"] > 0  # CPU time is its counter
    assert 0 < d["energy_j"] <= d["counter_energy_j"] and d["uncertainty_j"] is not None
    assert d["adjusted_energy_j"] is None and d["baseline_power_w"] is None


def test_the_window_is_the_result_schemas_record(fake_clock) -> None:
    _, _, m = replay_window(fake_clock, "generate_start",
                            baseline=BaselineReading(power_w={"replay0": 120.0}))
    assert type(m) is WindowEnergy and type(m.devices[0]) is DeviceEnergy  # one declaration (config/records.py)
    d = m.to_dict()
    assert set(d) == set(WindowEnergy.model_fields)
    assert set(d["devices"][0]) == set(DeviceEnergy.model_fields)
    model = WindowEnergy.model_validate(d)
    assert model.model_dump() == d


def test_several_windows_timeseries_and_parquet(fake_clock, tmp_path: Path) -> None:
    src = ReplaySource(clock=fake_clock, start_s=6.0, history_s=60)
    meter = EnergyMeter(src)
    for name, dt in (("prefill", 0.5), ("decode", 1.0), ("decode", 2.0)):
        with meter.measure(name):
            fake_clock.advance(dt)
    assert [m.name for m in meter.windows] == ["prefill", "decode", "decode"]
    df = meter.timeseries("decode")
    assert list(df.columns)[:3] == ["t_s", "device", "power_w"]
    assert df.t_s.max() <= 2.0 + 1e-9 and (df.device == "replay0").all()
    path = meter.write_timeseries(tmp_path / "ts" / "run.parquet")
    back = pd.read_parquet(path)
    assert back.groupby("window_index").window.first().tolist() == ["prefill", "decode", "decode"]
    assert len(back[back.window_index == 0]) == len(meter.timeseries("prefill"))
    assert len(back[back.window_index == 2]) == len(df) and len(back[back.window_index == 1]) > 0
    with pytest.raises(KeyError):
        meter.timeseries("nope")
    meter.clear()
    assert meter.windows == [] and len(pd.read_parquet(meter.write_timeseries(tmp_path / "e.parquet"))) == 0


def test_meter_validates_rate_and_accepts_scripted_source() -> None:
    with pytest.raises(ValueError):
        EnergyMeter(ScriptedSource(lambda t: [1.0]), sample_hz=500)
    meter = EnergyMeter(ScriptedSource(lambda t: [80.0, 20.0], n=2), sample_hz=100)
    with meter.measure() as win:
        time.sleep(0.2)
    m = win.result
    assert m.energy_j == pytest.approx(100.0 * m.duration_s, rel=1e-6)
    assert [d.mean_power_w for d in m.devices] == pytest.approx([80.0, 20.0])
