"""energy/uncertainty.py worked by hand: the uncertain flag at its threshold, the series' resolution at
cut instants, the baseline parts and the quadrature totals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_llenergy.energy.uncertainty import (
    HOST_BOUND_UTIL_PCT,
    UNCERTAIN_FRACTION,
    Budget,
    adjusted_total,
    baseline_parts,
    combine,
    host_bound,
    is_uncertain,
    quadrature,
    series_resolution_j,
)


def test_uncertain_at_its_threshold_on_the_adjusted_figures_first():
    at = UNCERTAIN_FRACTION * 100.0
    assert not is_uncertain(None, None, at, 100.0)  # equal is not above
    assert is_uncertain(None, None, math.nextafter(at, 1e9), 100.0)
    assert is_uncertain(None, None, 5.1, -100.0)  # a negative adjusted energy: its size counts
    assert not is_uncertain(50.0, 100.0, 1.0, 100.0)  # the adjusted figures decide when present
    assert is_uncertain(1.0, 100.0, 50.0, 100.0)
    assert not is_uncertain(5.0, 100.0, None, 100.0) and is_uncertain(5.1, 100.0, None, 100.0)
    assert not is_uncertain(5.0, 100.0, 9.0, None) and is_uncertain(5.1, -100.0, 9.0, None)
    assert not is_uncertain(None, 100.0, None, None) and not is_uncertain(9.0, None, None, None)
    budget = Budget({}, 5.1, None)
    assert budget.uncertain(100.0, None) and not budget.uncertain(200.0, None)
    assert Budget({}, 1.0, 6.0).uncertain(1000.0, 100.0) and not Budget({}, 99.0, 4.0).uncertain(1.0, 100.0)


def test_quadrature():
    assert quadrature([3.0, 4.0]) == 5.0 and quadrature([]) == 0.0 and quadrature([-2.0]) == 2.0


def test_series_resolution_is_a_quarter_of_the_step_times_the_interval():
    t = np.array([0.0, 0.1, 0.3, 0.4])
    p = np.array([100.0, 140.0, 100.0, 110.0])
    # [0, 0.1]: |140 - 100| x 0.1 / 4 = 1.0; [0.1, 0.3]: 40 x 0.2 / 4 = 2.0; [0.3, 0.4]: 10 x 0.1 / 4 = 0.25
    assert series_resolution_j(t, p, [0.05]) == pytest.approx(1.0)
    assert series_resolution_j(t, p, [0.2]) == pytest.approx(2.0)
    assert series_resolution_j(t, p, [0.05, 0.2]) == pytest.approx(math.sqrt(5.0))
    assert series_resolution_j(t, p, [0.35]) == pytest.approx(0.25)
    assert series_resolution_j(t, p, [0.1]) == pytest.approx(2.0)  # on a sample: the interval it starts
    assert series_resolution_j(t, p, [0.0]) == pytest.approx(1.0)
    assert series_resolution_j(t, p, [0.4]) == pytest.approx(0.25)  # the last sample: the last interval
    assert series_resolution_j(t, p, [-0.5, 0.9]) == 0.0  # outside the series
    assert series_resolution_j(t[:1], p[:1], [0.0]) == 0.0 and series_resolution_j(t[:2], p[:2], [0.05]) == pytest.approx(1.0)


def test_baseline_parts_are_watts_in_quadrature_times_duration():
    parts = baseline_parts(2.0, {"gpu0": 3.0, "gpu1": 4.0}, {"gpu0": 0.5})
    assert parts == {"baseline_sd": pytest.approx(10.0), "baseline_drift": pytest.approx(1.0)}
    assert baseline_parts(2.0, {}, {}) == {"baseline_sd": 0.0, "baseline_drift": 0.0}


def test_combine_sums_devices_in_quadrature_and_adds_the_baseline():
    raw = [{"counter_quantisation": 3.0, "series_counter": 1.0}, {"counter_quantisation": 4.0, "short_window": 2.0}]
    budget = combine(raw, None)
    assert budget.parts == {"counter_quantisation": 5.0, "series_counter": 1.0, "short_window": 2.0}
    assert budget.uncertainty_j == pytest.approx(math.sqrt(30.0)) and budget.adjusted_uncertainty_j is None
    adjusted = combine(raw, {"baseline_sd": 3.0, "baseline_drift": 1.0})
    assert adjusted.parts["baseline_sd"] == 3.0 and adjusted.uncertainty_j == pytest.approx(math.sqrt(30.0))
    assert adjusted.adjusted_uncertainty_j == pytest.approx(math.sqrt(40.0))


def test_adjusted_total():
    assert adjusted_total(3.0, {"baseline_sd": 4.0}) == pytest.approx(5.0)
    assert adjusted_total(3.0, {"baseline_drift": 4.0, "counter_quantisation": 100.0}) == pytest.approx(5.0)
    assert adjusted_total(2.0, {}) == 2.0


@pytest.mark.parametrize(("util", "expected"), [(None, None), (math.nan, None), (math.inf, None),
                                                (HOST_BOUND_UTIL_PCT - 0.1, True), (HOST_BOUND_UTIL_PCT, False), (99.0, False)])
def test_host_bound(util, expected):
    assert host_bound(util) is expected
