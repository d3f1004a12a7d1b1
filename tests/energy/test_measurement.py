"""build_measurement on hand-made windows: every figure of a window worked out by hand (two devices, a
linear power ramp whose trapezoid integral is exact, exact counters, a baseline, aux series, throttle counters)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pytest_llenergy.energy.edges import CounterReads
from pytest_llenergy.energy.measurement import (
    Measurement,
    WindowInputs,
    build_measurement,
    clip_series,
    trapezoid,
)
from pytest_llenergy.energy.sampler import Timeseries
from pytest_llenergy.energy.sources.base import DeviceInfo

# Samples just outside the window (-0.1 s, 2.1 s) carry extreme aux values that must not count.
T = np.array([-0.1, 0.1, 0.5, 1.0, 1.5, 1.9, 2.1])
POWER = np.column_stack([100.0 + 10.0 * T, np.full(T.size, 50.0)])  # gpu0 ramps 100 -> 120 W, gpu1 50 W
AUX = {
    "gpu_util_pct": np.array([[0, 0], [80, 50], [80, 50], [80, 50], [80, 50], [80, 50], [0, 0]], dtype=float),
    "memory_used_mb": np.array([[9e9, 9e9], [1, 5], [2, 6], [3, np.nan], [4, 7], [1, 5], [9e9, 9e9]], dtype=float),
    "temperature_c": np.array([[99, 99], [60, 40], [65, np.inf], [61, 41], [60, 40], [60, 40], [99, 99]], dtype=float),
}
PERIOD = 0.005  # a fine-grained counter: energy is the raw difference, quantisation mean power x period / sqrt(6)
DEVICES = (DeviceInfo("gpu0", "H200", "uuid-0", 0), DeviceInfo("gpu1", "H200", "uuid-1", 1))


def inputs(**changes) -> WindowInputs:
    series = Timeseries(T, POWER, ("gpu0", "gpu1"), 2.0, nominal_hz=10.0, aux=dict(AUX))
    base = WindowInputs(
        name="gen", kind="nvml", estimated=False, simulated=False, has_counter=True, counter_period_s=PERIOD,
        devices=DEVICES, duration_s=2.0, series=series,
        counters=(np.array([1000.0, 500.0]), np.array([1230.0, 600.0])),  # gpu0 230 J, gpu1 100 J
        throttle=({"power": np.array([0, 10**9]), "thermal": np.array([0, 0]), "low_util": np.array([0, 0]),
                   "only_before": np.array([0, 0])},
                  {"power": np.array([5 * 10**8, 10**9 + 25 * 10**7]), "thermal": np.array([2 * 10**8, -5]),
                   "low_util": np.array([3 * 10**9, 0])}),
        baseline_w={"gpu0": 60.0, "gpu1": 20.0}, baseline_sd_w={"gpu0": 0.3, "gpu1": 0.4},
        baseline_drift_w={"gpu0": 1.2}, input_tokens=100, output_tokens=300)
    return dataclasses.replace(base, **changes)


def q(mean_power_w: float) -> float:
    return mean_power_w * PERIOD / math.sqrt(6.0)


def test_every_figure_of_a_two_device_window():
    m = build_measurement(inputs())
    assert (m.name, m.source, m.duration_s, m.estimated, m.simulated) == ("gen", "nvml", 2.0, False, False)
    assert (m.energy_j, m.counter_energy_j, m.integral_energy_j) == (330.0, 330.0, pytest.approx(320.0))
    assert m.disagreement_pct == pytest.approx((320.0 - 330.0) / 330.0 * 100.0)
    assert (m.baseline_power_w, m.adjusted_energy_j) == (80.0, 330.0 - 80.0 * 2.0)
    assert (m.mean_power_w, m.peak_power_w) == (165.0, pytest.approx(170.0))  # 120 + 50 at t = 2.0, not 2.1
    assert (m.input_tokens, m.output_tokens) == (100, 300)
    assert (m.energy_per_output_token_j, m.energy_per_token_j) == (330.0 / 300, 330.0 / 400)
    assert (m.adjusted_energy_per_output_token_j, m.adjusted_energy_per_token_j) == (170.0 / 300, 170.0 / 400)
    assert (m.edge_corrected, m.edge_method, m.counter_period_s) == (False, "counter", PERIOD)
    raw = math.hypot(q(115.0), q(50.0))
    assert m.uncertainty_j == pytest.approx(raw)
    assert m.uncertainty_parts_j == pytest.approx({"counter_quantisation": raw, "series_counter": 0.0,
                                                   "short_window": 0.0, "baseline_sd": 0.5 * 2.0,
                                                   "baseline_drift": 1.2 * 2.0})
    assert m.adjusted_uncertainty_j == pytest.approx(math.sqrt(raw**2 + 1.0**2 + 2.4**2))
    assert m.uncertain is False
    assert (m.mean_utilization_pct, m.host_bound) == (65.0, True)  # mean of 80 % and 50 %: below 70 %
    idle = {**AUX, "gpu_util_pct": np.zeros_like(AUX["gpu_util_pct"])}
    slept = build_measurement(inputs(series=dataclasses.replace(inputs().series, aux=idle)))
    assert slept.host_bound is False and "host_bound" not in slept.flags  # no device work: not host-bound
    assert (m.n_samples, m.sample_hz) == (5, 10.0)
    assert m.throttle_s == {"low_util": 3.0, "power": 0.5, "thermal": 0.2} and m.throttled
    assert m.power_capped_share == 0.5 / 2.0
    # a periodic counter whose update instants are unknown; thermal throttling
    assert m.flags == ["edge_phase_unknown", "host_bound", "throttled:thermal"]
    exact = build_measurement(inputs(counter_period_s=None))  # an exact counter: nothing to correct
    assert exact.flags == ["host_bound", "throttled:thermal"] and exact.uncertainty_j == 0.0 and exact.counter_period_s is None


def test_each_devices_figures():
    d0, d1 = build_measurement(inputs()).devices
    assert (d0.device, d0.name, d0.uuid) == ("gpu0", "H200", "uuid-0") and d1.device == "gpu1"
    assert (d0.counter_energy_j, d0.integral_energy_j, d0.energy_j) == (230.0, pytest.approx(220.0), 230.0)
    assert (d1.counter_energy_j, d1.integral_energy_j, d1.energy_j) == (100.0, pytest.approx(100.0), 100.0)
    assert (d0.baseline_power_w, d0.adjusted_energy_j, d1.adjusted_energy_j) == (60.0, 110.0, 60.0)
    assert (d0.mean_power_w, d1.mean_power_w) == (115.0, 50.0)
    assert (d0.peak_power_w, d1.peak_power_w) == (pytest.approx(120.0), 50.0)
    assert (d0.peak_memory_mb, d1.peak_memory_mb) == (4.0, 7.0)  # NaN skipped, outside samples ignored
    assert (d0.mean_utilization_pct, d1.mean_utilization_pct) == (80.0, 50.0)
    assert (d0.host_bound, d1.host_bound) == (False, True)
    assert (d0.max_temperature_c, d1.max_temperature_c) == (65.0, 41.0)  # inf skipped
    assert d0.throttle_s == {"power": 0.5, "thermal": 0.2, "low_util": 3.0}
    assert d1.throttle_s == {"power": 0.25, "thermal": 0.0, "low_util": 0.0}  # a counter going back: 0
    assert (d0.edge_method, d0.uncertainty_j, d1.uncertainty_j) == ("counter", pytest.approx(q(115.0)),
                                                                     pytest.approx(q(50.0)))


def test_only_causes_that_threaten_comparability_throttle():
    m = build_measurement(inputs(throttle=({"low_util": np.array([0, 0])}, {"low_util": np.array([10**9, 0])})))
    assert m.throttle_s == {"low_util": 1.0} and not m.throttled and m.power_capped_share is None
    for cause in ("thermal", "board_limit", "reliability"):
        one = build_measurement(inputs(throttle=({cause: np.array([0, 0])}, {cause: np.array([0, 1])})))
        assert one.throttled and one.throttle_s == {cause: 1e-9} and f"throttled:{cause}" in one.flags
    for cause in ("power", "sync_boost"):  # a busy GPU at its power limit is normal operation
        one = build_measurement(inputs(throttle=({cause: np.array([0, 0])}, {cause: np.array([0, 10**9])})))
        assert not one.throttled and not any(f.startswith("throttled") for f in one.flags)
    capped = build_measurement(inputs(throttle=({"power": np.array([0, 0])}, {"power": np.array([5 * 10**8, 10**9])})))
    assert capped.power_capped_share == pytest.approx(1.0 / 2.0)  # the worst device, as a share of the window
    missing = build_measurement(inputs(throttle=(None, {"power": np.array([1, 1])})))
    assert missing.throttle_s == {} and not missing.throttled and missing.devices[0].throttle_s == {}


def test_a_large_baseline_drift_marks_the_window_uncertain():
    m = build_measurement(inputs(baseline_drift_w={"gpu0": 10.0}))
    assert m.adjusted_uncertainty_j > 0.05 * 170.0 and m.uncertain and m.flags[1:] == ["uncertain", "host_bound", "throttled:thermal"]


def test_raw_uncertainty_decides_without_a_baseline():
    m = build_measurement(inputs(baseline_w=None, counter_period_s=0.009))
    assert m.adjusted_energy_j is None and m.baseline_power_w is None and m.adjusted_uncertainty_j is None
    assert m.adjusted_energy_per_output_token_j is None and m.adjusted_energy_per_token_j is None
    assert set(m.uncertainty_parts_j) == {"counter_quantisation", "series_counter", "short_window"}
    assert not m.uncertain
    big = build_measurement(inputs(baseline_w=None, counters=(np.array([0.0, 0.0]), np.array([1e5, 1e5]))))
    assert big.uncertainty_j > 0  # 5e4 W: quantisation 5e4 x 0.005 / sqrt(6) = 102 J, below 5 % of 2e5 J
    assert not big.uncertain


def test_the_baseline_is_subtracted_for_gpus_and_their_traces_only():
    assert build_measurement(inputs(kind="replay")).adjusted_energy_j == 170.0
    for kind in ("rapl", "estimate", "scripted"):
        m = build_measurement(inputs(kind=kind))
        assert m.adjusted_energy_j is None and m.baseline_power_w is None and m.devices[0].baseline_power_w is None
    missing = build_measurement(inputs(baseline_w={"gpu0": 60.0}))  # no baseline for gpu1
    assert missing.devices[1].adjusted_energy_j is None and missing.adjusted_energy_j is None
    assert missing.adjusted_uncertainty_j is None


def test_without_counters_energy_is_the_integral():
    m = build_measurement(inputs(counters=(None, None)))
    assert m.energy_j == pytest.approx(320.0) and m.counter_energy_j is None and m.disagreement_pct is None
    assert m.edge_method == "series" and m.counter_period_s is None and m.edge_corrected is False
    assert m.flags[0] == "counter_unavailable" and "edge_phase_unknown" not in m.flags
    no_counter = build_measurement(inputs(has_counter=False))
    assert no_counter.counter_energy_j is None and no_counter.energy_j == pytest.approx(320.0)
    assert no_counter.counter_period_s is None


def test_flags_for_errors_gaps_aborts_and_short_windows():
    series = dataclasses.replace(inputs().series, gaps=2)
    m = build_measurement(inputs(series=series, errors=("lost", "lost", "nvml"), aborted=True))
    assert m.flags == ["edge_phase_unknown", "sampler_gaps", "source_error:lost", "source_error:nvml", "aborted", "host_bound",
                       "throttled:thermal"]
    short = build_measurement(inputs(duration_s=0.049, series=dataclasses.replace(series, duration_s=0.049, gaps=0)))
    assert "short_window" in short.flags  # under 10 counter updates
    assert "short_window" not in build_measurement(inputs(duration_s=0.051)).flags
    # no counter: the sampler period (1 / nominal_hz, else 1 s) decides
    assert "short_window" in build_measurement(inputs(counters=(None, None), duration_s=0.99)).flags
    assert "short_window" not in build_measurement(inputs(counters=(None, None), duration_s=1.01)).flags
    assert "short_window" not in build_measurement(inputs(has_counter=False, duration_s=1.01)).flags
    slow = dataclasses.replace(inputs().series, nominal_hz=0.0)
    m = build_measurement(inputs(counters=(None, None), series=slow))
    assert "short_window" in m.flags and m.sample_hz is None


def test_a_window_without_samples_keeps_its_counter_energy():
    empty = Timeseries(np.empty(0), np.empty((0, 2)), ("gpu0", "gpu1"), 2.0, nominal_hz=10.0)
    m = build_measurement(inputs(series=empty))
    assert (m.energy_j, m.counter_energy_j, m.integral_energy_j, m.peak_power_w) == (330.0, 330.0, None, None)
    assert m.n_samples == 0 and "no_samples" in m.flags and "edge_phase_unknown" not in m.flags
    assert m.mean_utilization_pct is None and m.host_bound is None and m.devices[0].peak_memory_mb is None
    assert m.devices[0].peak_power_w is None and m.devices[0].integral_energy_j is None


def test_an_estimate_has_an_uncertainty_budget_and_no_adjusted_figure():
    m = build_measurement(inputs(kind="estimate", estimated=True, simulated=True))
    assert m.estimated and m.simulated and m.uncertainty_j is not None and m.uncertainty_j > 0
    assert m.adjusted_energy_j is None and m.adjusted_uncertainty_j is None
    assert set(m.uncertainty_parts_j) == {"counter_quantisation", "series_counter", "short_window"}
    assert m.devices[0].uncertainty_j is not None


def test_counter_reads_between_the_edges_are_used():
    reads = CounterReads(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]),
                         np.array([[1000.0, 500.0], [1100.0, 550.0], [1230.0, 600.0]]))
    assert build_measurement(inputs(reads=reads)).energy_j == 330.0
    odd = CounterReads(np.array([0.0, 2.0]), np.array([0.0, 2.0]), np.array([[0.0, 0.0], [7.0, 3.0]]))
    assert build_measurement(inputs(reads=odd)).energy_j == 10.0  # the reads, not the edge pair
    one = CounterReads(np.array([0.0]), np.array([0.0]), np.array([[0.0, 0.0]]))
    assert build_measurement(inputs(reads=one)).energy_j == 330.0  # a single read: the edges


def test_clip_series_and_trapezoid():
    tt, pp = clip_series(T, POWER, 2.0)
    assert list(tt) == [0.0, 0.1, 0.5, 1.0, 1.5, 1.9, 2.0] and pp[0, 0] == pytest.approx(100.0)
    assert pp[-1, 0] == pytest.approx(120.0) and list(pp[:, 1]) == [50.0] * 7
    at_edges = clip_series(np.array([0.0, 1.0, 2.0]), np.array([[1.0], [2.0], [3.0]]), 2.0)[0]
    assert list(at_edges) == [0.0, 1.0, 2.0]  # samples on the edges are not doubled
    assert trapezoid(tt, pp) == pytest.approx([220.0, 100.0])
    assert list(trapezoid(np.array([1.0]), np.array([[5.0, 6.0]]))) == [0.0, 0.0]
    e_t, e_p = clip_series(np.empty(0), np.empty((0, 2)), 1.0)
    assert e_t.size == 0 and e_p.shape == (0, 2)


def test_to_dict_copies_every_field():
    m = build_measurement(inputs())
    d = m.to_dict()
    assert set(d) == set(Measurement.model_fields)
    assert d["flags"] == ["edge_phase_unknown", "host_bound", "throttled:thermal"] and isinstance(d["devices"], list) and d["devices"][0]["device"] == "gpu0"
    assert d["devices"][0]["throttle_s"] == {"power": 0.5, "thermal": 0.2, "low_util": 3.0}
    d["throttle_s"]["power"] = 99.0
    d["devices"][0]["throttle_s"]["power"] = 99.0
    assert m.throttle_s["power"] == 0.5 and m.devices[0].throttle_s["power"] == 0.5  # copies, not views
    d["uncertainty_parts_j"]["baseline_sd"] = 99.0
    assert m.uncertainty_parts_j["baseline_sd"] == 1.0
