"""NvmlSource against the fake pynvml: selection, reads, samples, throttling, faults."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pytest_llenergy.energy.sources import NvmlSource, SourceError, resolve_source
from pytest_llenergy.energy.sources.nvml import parse_visible_devices

from .fake_pynvml import FakeGpu

UUIDS = ["GPU-aaaa-0", "GPU-bbbb-1", "GPU-abcd-2"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0,2", [0, 2]), ("2", [2]), ("GPU-bbbb", [1]), ("GPU-abcd-2,0", [2, 0]),
     ("1,7,0", [1]), ("GPU-a", []), ("", []), ("0,0", [0]), (" 1 , 2 ", [1, 2])],
)
def test_parse_visible_devices(spec: str, expected: list[int]) -> None:
    assert parse_visible_devices(spec, UUIDS) == expected


def test_selects_all_gpus_with_labels_by_nvml_index(install_nvml) -> None:
    install_nvml(3)
    src = NvmlSource()
    assert [d.label for d in src.devices()] == ["gpu0", "gpu1", "gpu2"]
    assert src.devices()[1].name == "NVIDIA H200" and src.devices()[1].uuid.startswith("GPU-")
    assert (src.kind, src.has_counter, src.estimated, src.simulated) == ("nvml", True, False, False)


def test_respects_cuda_visible_devices(install_nvml, monkeypatch) -> None:
    fake = install_nvml(4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"2,{fake.gpus[0].uuid[:12]}")
    src = NvmlSource()
    assert [(d.label, d.index) for d in src.devices()] == [("gpu2", 2), ("gpu0", 0)]
    assert NvmlSource(devices=[3]).devices()[0].label == "gpu3"  # explicit list wins


def test_empty_or_bad_selection_is_a_source_error(install_nvml, monkeypatch) -> None:
    fake = install_nvml(2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(SourceError, match="no GPU selected"):
        NvmlSource()
    with pytest.raises(SourceError, match="no GPU with NVML index"):
        NvmlSource(devices=[5])
    assert fake.init_count == 0  # every failed construction shut NVML down again


def test_init_failure_is_a_source_error(no_nvml) -> None:
    with pytest.raises(SourceError, match="NVML init failed: NVML Shared Library Not Found"):
        NvmlSource()


def test_counter_is_quantised_to_100ms_and_in_joules(install_nvml, fake_clock) -> None:
    install_nvml([FakeGpu(0, power=250.0)], clock=fake_clock)
    src = NvmlSource(clock=fake_clock)
    e0 = src.read_counters()
    fake_clock.advance(0.05)
    assert src.read_counters()[0] == pytest.approx(e0[0])  # no update yet
    fake_clock.advance(0.30)
    assert src.read_counters()[0] - e0[0] == pytest.approx(250.0 * 0.3, abs=1e-3)
    assert src.read_power()[0] == pytest.approx(250.0)


def test_power_prefers_field_values_and_falls_back(install_nvml) -> None:
    fake = install_nvml([FakeGpu(0, power=123.0)])
    assert NvmlSource().read_power()[0] == pytest.approx(123.0)
    assert fake.calls.get("field_values", 0) >= 2 and "power_usage" not in fake.calls
    fake = install_nvml([FakeGpu(0, power=77.0)], field_power=False)
    assert NvmlSource().read_power()[0] == pytest.approx(77.0)
    assert fake.calls["power_usage"] >= 1


def test_no_energy_counter(install_nvml) -> None:
    install_nvml(1, energy=False)
    src = NvmlSource()
    assert src.has_counter is False and src.read_counters() is None


def test_aux_signals(install_nvml) -> None:
    install_nvml([FakeGpu(0, memory_used_mb=2048, util_pct=80, temperature_c=51, pstate=0,
                          violation={0: 0.5})])
    aux = NvmlSource().read_aux()
    assert set(aux) == {"memory_used_mb", "gpu_util_pct", "mem_util_pct", "temperature_c",
                        "sm_clock_mhz", "pstate", "clock_event_reasons"}
    assert aux["memory_used_mb"][0] == pytest.approx(2048)
    assert (aux["gpu_util_pct"][0], aux["temperature_c"][0], aux["pstate"][0]) == (80, 51, 0)
    assert aux["clock_event_reasons"][0] == 0x4


def test_throttle_counters_per_cause(install_nvml, fake_clock) -> None:
    install_nvml([FakeGpu(0, violation={0: 0.5, 1: 0.1})], clock=fake_clock)
    src = NvmlSource(clock=fake_clock)
    a = src.read_throttle()
    fake_clock.advance(2.0)
    b = src.read_throttle()
    assert set(a) == {"power", "thermal", "sync_boost", "board_limit", "low_utilization",
                      "reliability", "total_app_clocks", "total_base_clocks"}
    assert (b["power"] - a["power"])[0] == pytest.approx(1.0e9, rel=1e-6)
    assert (b["thermal"] - a["thermal"])[0] == pytest.approx(0.2e9, rel=1e-6)
    assert (b["reliability"] - a["reliability"])[0] == 0


def test_drain_power_samples_on_monotonic_clock(install_nvml) -> None:
    fake = install_nvml([FakeGpu(0, power=lambda t: 100 + 100 * t), FakeGpu(1, power=50.0)])
    src = NvmlSource()
    time.sleep(0.15)  # at least 0.15 s of driver samples (one per 20 ms), however long it really takes
    before = time.monotonic()
    t, p = src.drain_power_samples()
    now = time.monotonic()
    assert p.shape == (t.size, 2) and t.size >= 7
    assert np.all(np.diff(t) == pytest.approx(0.02, abs=1e-4))
    # driver µs wall time mapped onto monotonic: the newest sample is at most one period old
    assert before - 0.02 - 0.001 <= t[-1] <= now + 0.001
    expected = 100 + 100 * (t - fake.t0)
    assert p[:, 0] == pytest.approx(expected, abs=0.2)
    assert np.all(p[:, 1] == pytest.approx(50.0))
    time.sleep(0.05)
    t2, p2 = src.drain_power_samples(since=t[-1])
    assert t2.size >= 1 and t2[0] == pytest.approx(t[-1] + 0.02, abs=1e-3)  # only newer ones
    assert p2[0, 0] == pytest.approx(100 + 100 * (t2[0] - fake.t0), abs=0.2)
    t3, _ = src.drain_power_samples(since=t2[-1] + 10.0)
    assert t3.size == 0  # NOT_FOUND from the driver: nothing newer


def test_sample_timestamps_on_the_monotonic_clock_or_bogus(install_nvml) -> None:
    install_nvml(1, timestamps="monotonic")
    src = NvmlSource()
    time.sleep(0.05)
    before = time.monotonic()
    t, _ = src.drain_power_samples()
    assert src.supports_power_samples and before - 0.02 - 0.001 <= t[-1] <= time.monotonic() + 0.001
    install_nvml(1, timestamps="bogus")
    assert NvmlSource().drain_power_samples() is None  # unusable: poll instead


def test_samples_unsupported_means_none(install_nvml) -> None:
    install_nvml(1, samples=False)
    src = NvmlSource()
    assert src.supports_power_samples is False and src.drain_power_samples() is None


def test_gpu_lost_raises_source_error_naming_device(install_nvml, fake_clock) -> None:
    install_nvml(2, clock=fake_clock, lost_after=1.0)
    src = NvmlSource(clock=fake_clock)
    src.read_power()
    fake_clock.advance(1.5)
    for read in (src.read_power, src.read_counters, src.read_aux, src.read_throttle):
        with pytest.raises(SourceError, match="gpu0: .* failed: GPU is lost"):
            read()


def test_close_shuts_nvml_down(install_nvml) -> None:
    fake = install_nvml(1)
    src = NvmlSource()
    assert fake.init_count == 1
    src.close()
    src.close()
    assert fake.init_count == 0


def test_resolve_nvml_and_auto(install_nvml) -> None:
    install_nvml(2)
    src, reason = resolve_source("nvml")
    assert reason == "nvml: 2 GPUs (NVIDIA H200)"
    src, reason = resolve_source("auto", devices=[1])
    assert isinstance(src, NvmlSource) and reason == "auto: nvml: 1 GPU (NVIDIA H200)"
