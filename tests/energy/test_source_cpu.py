"""RAPL (fake sysfs tree, wrap-around) and the CPU-time estimate."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from pytest_llenergy.energy.sources import EstimateSource, RaplSource, SourceError, resolve_source
from pytest_llenergy.energy.sources.rapl import discover_domains

RANGE_UJ = 262_143_328_850


def make_zone(root: Path, name: str, zone: str, energy_uj: int, max_range: int = RANGE_UJ) -> Path:
    d = root / zone
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


@pytest.fixture
def rapl_root(tmp_path: Path) -> Path:
    make_zone(tmp_path, "package-0", "intel-rapl:0", 1_000_000)
    make_zone(tmp_path, "core", "intel-rapl:0:0", 5)
    make_zone(tmp_path, "dram", "intel-rapl:0:1", 2_000_000)
    make_zone(tmp_path, "package-1", "intel-rapl:1", 3_000_000)
    make_zone(tmp_path, "psys", "intel-rapl:2", 7)
    return tmp_path


def set_uj(root: Path, zone: str, value: int) -> None:
    (root / zone / "energy_uj").write_text(f"{value}\n")


def test_discovers_package_and_dram_domains(rapl_root: Path) -> None:
    labels = [label for label, _ in discover_domains(rapl_root)]
    assert labels == ["cpu-package-0", "cpu-dram-0", "cpu-package-1"]
    src = RaplSource(rapl_root)
    assert [d.label for d in src.devices()] == labels
    assert src.read_counters() == pytest.approx([1.0, 2.0, 3.0])
    assert (src.kind, src.has_counter, src.estimated) == ("rapl", True, False)


def test_wrap_around_is_unwrapped(rapl_root: Path) -> None:
    src = RaplSource(rapl_root)
    set_uj(rapl_root, "intel-rapl:0", RANGE_UJ - 500_000)
    src.read_counters()
    set_uj(rapl_root, "intel-rapl:0", 250_000)  # wrapped: +500 000 + 250 000 µJ
    e = src.read_counters()
    assert e[0] == pytest.approx((RANGE_UJ + 250_000) / 1e6)
    set_uj(rapl_root, "intel-rapl:0", 1_250_000)
    assert src.read_counters()[0] - e[0] == pytest.approx(1.0)


def test_power_from_counter_differences(rapl_root: Path, fake_clock) -> None:
    src = RaplSource(rapl_root, clock=fake_clock)
    fake_clock.advance(0.5)
    set_uj(rapl_root, "intel-rapl:0", 1_000_000 + 40_000_000)  # 40 J in 0.5 s
    set_uj(rapl_root, "intel-rapl:0:1", 2_000_000 + 5_000_000)
    p = src.read_power()
    assert p == pytest.approx([80.0, 10.0, 0.0])
    assert src.read_power() == pytest.approx(p)  # no time elapsed: last rate


def test_unavailable_rapl(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no RAPL"):
        RaplSource(tmp_path / "missing")
    make_zone(tmp_path, "package-0", "intel-rapl:0", 1)
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()  # as if unreadable
    with pytest.raises(SourceError, match="not readable"):
        RaplSource(tmp_path)


def fake_process(cpu: list[float]) -> types.SimpleNamespace:
    return types.SimpleNamespace(cpu_times=lambda: types.SimpleNamespace(user=cpu[0], system=cpu[1]))


def test_estimate_model_cpu_seconds_times_watts(fake_clock) -> None:
    cpu = [10.0, 2.0]
    src = EstimateSource(12.0, clock=fake_clock, process=fake_process(cpu))
    fake_clock.advance(2.0)
    cpu[0] += 3.0  # 1.5 busy cores + ...
    cpu[1] += 1.0  # ... 0.5 => 2 cores x 12 W
    assert src.read_power()[0] == pytest.approx(24.0)
    assert (src.kind, src.estimated, src.has_counter) == ("estimate", True, True)
    assert src.read_counters() == pytest.approx([16 * 12.0])  # CPU seconds x W: the estimate's counter
    assert src.devices()[0].label == "cpu-estimate"


def test_estimate_defaults_and_validation() -> None:
    src = EstimateSource()
    assert src.cpu_core_power_w == 10.0
    sum(i * i for i in range(200_000))
    assert src.read_power()[0] >= 0.0
    with pytest.raises(ValueError):
        EstimateSource(0)


def test_auto_falls_back_to_estimate(no_nvml, monkeypatch) -> None:
    import pytest_llenergy.energy.sources.rapl as rapl

    monkeypatch.setattr(rapl, "DEFAULT_ROOT", Path("/nonexistent-powercap"))
    src, reason = resolve_source("auto", cpu_core_power_w=7.5)
    assert isinstance(src, EstimateSource) and src.cpu_core_power_w == 7.5
    assert reason.startswith("auto: no NVML (NVML init failed")
    assert "no readable RAPL (no RAPL package/dram zone" in reason
    assert reason.endswith("→ estimate: process CPU time x 7.5 W/core")
    assert np.isfinite(src.read_power()).all()


def test_rapl_spec(rapl_root: Path, monkeypatch) -> None:
    import pytest_llenergy.energy.sources.rapl as rapl

    monkeypatch.setattr(rapl, "DEFAULT_ROOT", rapl_root)
    src, reason = resolve_source("rapl")
    assert reason == "rapl: cpu-package-0, cpu-dram-0, cpu-package-1"
    monkeypatch.setattr(rapl, "DEFAULT_ROOT", Path("/nonexistent-powercap"))
    with pytest.raises(SourceError):
        resolve_source("rapl")


def test_rapl_window_is_never_baseline_adjusted(rapl_root: Path, fake_clock) -> None:
    from pytest_llenergy.energy import BaselineReading, EnergyMeter

    src = RaplSource(rapl_root, clock=fake_clock)
    meter = EnergyMeter(src, baseline=BaselineReading(power_w={"cpu-package-0": 10.0}))
    with meter.measure() as win:
        set_uj(rapl_root, "intel-rapl:0", 1_000_000 + 50_000_000)
        fake_clock.advance(1.0)
    m = win.result
    assert m.source == "rapl" and m.devices[0].counter_energy_j == pytest.approx(50.0)
    assert m.counter_energy_j == pytest.approx(50.0) and m.mean_power_w == pytest.approx(50.0)
    assert m.adjusted_energy_j is None and m.devices[0].baseline_power_w is None
    assert "short_window" not in m.flags and "counter_unavailable" not in m.flags


def test_sampler_restarts_counter_rates_at_window_start(fake_clock) -> None:
    from pytest_llenergy.energy import Sampler

    cpu = [0.0, 0.0]
    src = EstimateSource(10.0, clock=fake_clock, process=fake_process(cpu))
    fake_clock.advance(100.0)
    cpu[0] += 100.0  # a busy core long before the window: not the window's power
    sampler = Sampler(src, 10)
    sampler.start()
    fake_clock.advance(1.0)
    ts = sampler.stop()
    assert np.allclose(ts.power_w, 0.0)


def test_a_restarted_rate_never_borrows_the_previous_interval(fake_clock) -> None:
    cpu = [0.0, 0.0]
    src = EstimateSource(10.0, clock=fake_clock, process=fake_process(cpu))
    fake_clock.advance(1.0)
    cpu[0] += 1.0
    assert src.read_power()[0] == pytest.approx(10.0)  # a busy second
    src.restart_rate()  # a new window
    fake_clock.advance(0.005)  # 5 ms idle: under the 20 ms minimum interval of a running rate
    assert src.read_power()[0] == pytest.approx(0.0)


def test_the_cpu_time_counter_resolves_a_few_ms() -> None:
    import time

    src = EstimateSource(10.0)
    before = src.read_counters()[0]
    end = time.process_time() + 0.003
    while time.process_time() < end:
        pass
    assert 0.03 <= src.read_counters()[0] - before < 0.5  # >= 3 ms of CPU x 10 W, on a ns clock
