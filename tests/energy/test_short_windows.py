"""Short windows on the replayed H200 trace with a counter that moves every 100 ms (as NVML's does):
never 0 J, the truth within the stated uncertainty, idle adjusted energy ~0 within its uncertainty.

Real time (the replay plays at speed 1), so each window's phase against the counter's updates is
random: a 5 ms window sees no counter update 95 % of the time (its raw counter delta is 0).
"""

from __future__ import annotations

import time

import pytest

from pytest_llenergy.energy import BaselineReading, EnergyMeter, ReplaySource

from .conftest import META

IDLE = next(w for w in META["windows"] if w["from"] == "idle_start")
IDLE_W = IDLE["counter_energy_j"] / (IDLE["t_end_s"] - IDLE["t_start_s"])  # ~121.7 W
BASELINE = BaselineReading(power_w={"replay0": IDLE_W}, sd_w={"replay0": 1.0}, n_samples=300)
STARTS = {"idle": 2.0, "matmul": 26.0}  # trace seconds inside the idle and matmul phases


def measure(phase: str, seconds: float, *, driver: bool = True) -> tuple[ReplaySource, object]:
    src = ReplaySource(start_s=STARTS[phase], counter_period_s=0.1, counter_phase_s=0.013)
    meter = EnergyMeter(src, 10, BASELINE, use_driver_buffer=driver)
    with meter.measure(f"{phase}-{seconds * 1000:g}ms") as win:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
    return src, win


def truth(src: ReplaySource, win: object) -> float:
    a, b = win.host_edges["monotonic"]  # type: ignore[attr-defined]
    return float(src.energy_between(src.trace_time(a), src.trace_time(b))[0])


@pytest.mark.parametrize("phase", ["idle", "matmul"])
@pytest.mark.parametrize("ms", [5, 20, 50, 100])
def test_short_window_is_the_truth_within_its_uncertainty(phase: str, ms: int) -> None:
    src, win = measure(phase, ms / 1000)
    m = win.result
    exact = truth(src, win)
    assert m.energy_j > 0 and m.uncertainty_j is not None and m.uncertainty_j > 0
    assert abs(m.energy_j - exact) <= 3 * m.uncertainty_j + 0.002 * exact, (m.energy_j, exact, m.uncertainty_j)
    assert m.uncertainty_j < 0.25 * exact  # honest, and still a figure worth having
    if m.duration_s < 0.1:
        assert m.edge_method == "series" and "edge_phase_unknown" not in m.flags  # by design, not unknown
    if phase == "idle":  # adjusted ~0 within its uncertainty, never a large negative number
        assert abs(m.adjusted_energy_j) <= 3 * m.adjusted_uncertainty_j + 0.01 * exact, m


def test_every_5ms_window_has_energy_and_none_borrows_from_the_one_before() -> None:
    figures = []
    for phase in ("matmul", "idle", "matmul", "idle"):
        src, win = measure(phase, 0.005)
        figures.append((win.result.energy_j / win.result.duration_s, phase))
    for watts, phase in figures:
        assert (watts > 300) if phase == "matmul" else (100 < watts < 140), figures


@pytest.mark.parametrize("driver", [True, False])
def test_a_window_between_two_samples_is_interpolated(driver: bool) -> None:
    src, win = measure("idle", 0.003, driver=driver)
    m = win.result
    assert m.n_samples <= 1 and m.edge_method == "series"
    assert m.energy_j == pytest.approx(truth(src, win), rel=0.05)
