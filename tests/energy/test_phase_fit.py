"""Phase powers fitted through the sensor's averaging window recover a short prefill that pooling smears."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_llenergy.energy.phase_average import averaged_phase
from pytest_llenergy.energy.phase_fit import best_fit, fit, fitted_phase
from pytest_llenergy.energy.phases import split_window

from .phase_helpers import DECODE_W, IDLE_W, PREFILL_W, batches_profile, exact, timeline, window

HOST0 = 500.0
SENSOR_S = 0.02  # the driver's sample reports the mean power of the last 20 ms


def runs(n=16, sensor_s=SENSOR_S, lag_s=0.0, seed=5):
    """A batch-32-like window (8 x (24 ms prefill, 128 ms decode, 3 ms host gap)) at random offsets."""
    segs, bounds, duration = batches_profile(8, prefill_s=0.024, decode_s=0.128, gap_s=0.003)
    rng = np.random.default_rng(seed)
    out = []
    for offset in rng.uniform(0.0, 0.02, n):
        series, m = window(segs, duration, offset=float(offset), sensor_s=sensor_s, lag_s=lag_s)
        edges = {"perf_counter": (HOST0, HOST0 + duration)}
        out.append(split_window(series, m, timeline(bounds, 4, host0=HOST0), edges, baseline_w=IDLE_W))
    return out, segs


def test_fit_recovers_a_one_sample_prefill_that_pooling_smears():
    recorded, segs = runs()
    truth = exact(segs, PREFILL_W)
    result = fit(recorded, SENSOR_S, 0.0)
    assert result.power_w["prefill"] == pytest.approx(PREFILL_W, rel=0.02)
    assert result.power_w["decode"] == pytest.approx(DECODE_W, rel=0.01)
    fig = fitted_phase(recorded, "prefill", result, 4 * 32, IDLE_W, None)
    assert abs(fig.energy_j - truth) <= max(3 * fig.uncertainty_j, 0.02 * truth), (fig.energy_j, truth, fig.uncertainty_j)
    assert fig.method.startswith("phase_fit:16runs") and "window20ms" in fig.method
    assert fig.adjusted_energy_j == pytest.approx(fig.energy_j - IDLE_W * fig.duration_s)
    pooled = averaged_phase(recorded, "prefill", 4 * 32, IDLE_W, None)
    assert abs(pooled.energy_j - truth) > 0.1 * truth  # what the fit is for: pooling loses >10 % here
    assert abs(fig.energy_j - truth) < 0.3 * abs(pooled.energy_j - truth)


def test_the_sensor_model_matters_and_the_residual_finds_it():
    recorded, segs = runs(lag_s=0.01)
    truth = exact(segs, PREFILL_W)
    point = fitted_phase(recorded, "prefill", fit(recorded, 0.0, 0.0), None, None, None)
    assert abs(point.energy_j - truth) > 0.05 * truth  # the wrong sensor model is biased
    best = best_fit(recorded, windows=(0.0, 0.01, 0.02, 0.04), lags=(0.0, 0.01, 0.02))
    assert (best.window_s, best.lag_s) == (0.02, 0.01)
    assert fitted_phase(recorded, "prefill", best, None, None, None).energy_j == pytest.approx(truth, rel=0.02)


def test_underdetermined_fit_is_refused():
    recorded, _ = runs(n=1)
    short = [r for r in recorded]
    short[0].model.t = short[0].model.t[:3]
    short[0].model.p_raw = short[0].model.p_raw[:3]
    assert fit(short, SENSOR_S, 0.0) is None
    assert fitted_phase(recorded, "other", fit(runs()[0], SENSOR_S, 0.0), None, None, None) is None


def continuous_runs(n=16, seed=3, sensor_s=SENSOR_S):
    """Continuous batching: batch B's prefill (0.200-0.224 s) runs while batch A decodes, as a vLLM step
    mixes them; any prefill puts the GPU at prefill power, decode alone at decode power."""
    bounds = [(0.05, 0.074, 0.40), (0.20, 0.224, 0.55)]
    segs = [(0.0, 0.05, IDLE_W), (0.05, 0.074, PREFILL_W), (0.074, 0.20, DECODE_W), (0.20, 0.224, PREFILL_W),
            (0.224, 0.55, DECODE_W), (0.55, 0.60, IDLE_W)]
    out = []
    for offset in np.random.default_rng(seed).uniform(0.0, 0.02, n):
        series, m = window(segs, 0.60, offset=float(offset), sensor_s=sensor_s)
        out.append(split_window(series, m, timeline(bounds, 4, host0=HOST0), {"perf_counter": (HOST0, HOST0 + 0.60)},
                                baseline_w=IDLE_W))
    return out, segs


def test_mixed_prefill_and_decode_time_is_powered_once_and_shared_by_token_work():
    from pytest_llenergy.energy.attribution import attribute

    recorded, segs = continuous_runs()
    result = fit(recorded, SENSOR_S, 0.0)
    # overlapping phase spans as separate regressors put prefill + decode power on the mixed 24 ms
    assert result.power_w["prefill"] == pytest.approx(PREFILL_W, rel=0.02)
    assert result.power_w["decode"] == pytest.approx(DECODE_W, rel=0.02)

    def exact_energy(x):  # the true profile's cumulative joules
        return np.array([sum(w * (min(max(t, a), b) - a) for a, b, w in segs) for t in np.atleast_1d(x)])

    truth = attribute(recorded[0].spans, 0.60, exact_energy, IDLE_W)
    pre = fitted_phase(recorded, "prefill", result, 8 * 32, IDLE_W, None)
    dec = fitted_phase(recorded, "decode", result, None, IDLE_W, None)
    # the mixed 24 ms go 128 prefill tokens : 4.4 decode steps, so prefill gets ~97 % of them
    assert pre.energy_j == pytest.approx(truth.prefill_j.sum(), rel=0.02)
    assert dec.energy_j == pytest.approx(truth.decode_j.sum(), rel=0.02)
    assert pre.adjusted_energy_j == pytest.approx(truth.prefill_adj_j.sum(), rel=0.03)
    window_j = recorded[0].model.energy_at(np.array([0.60]))[0]
    other_s = 0.60 - 0.50  # idle before the first prefill and after the last decode
    assert pre.energy_j + dec.energy_j + result.power_w.get("other", IDLE_W) * other_s == pytest.approx(window_j, rel=0.01)
    assert (pre.duration_s, dec.duration_s) == pytest.approx((0.048, 0.55 - 0.074))  # time in the phase: unions


@pytest.mark.parametrize("segments, minus, expected", [
    ([(0.0, 10.0)], [(2.0, 3.0), (5.0, 7.0)], [(0.0, 2.0), (3.0, 5.0), (7.0, 10.0)]),
    ([(0.0, 1.0), (4.0, 6.0)], [(0.5, 5.0)], [(0.0, 0.5), (5.0, 6.0)]),
    ([(0.0, 1.0)], [], [(0.0, 1.0)]),
    ([(2.0, 3.0)], [(0.0, 5.0)], []),
    ([(2.0, 3.0)], [(3.0, 4.0), (0.0, 2.0)], [(2.0, 3.0)]),  # touching edges take nothing
])
def test_subtract_segments(segments, minus, expected):
    from pytest_llenergy.energy.attribution import subtract_segments

    assert subtract_segments(segments, minus) == expected


def test_pooled_phases_do_not_count_mixed_time_twice():
    """The pooled fallback (point samples: pooling is unbiased) shares mixed time as the fit does; with
    prefill and decode spans pooled apart, decode took the mixed 24 ms at prefill power on top."""
    from pytest_llenergy.energy.attribution import attribute

    recorded, segs = continuous_runs(sensor_s=0.0)

    def exact_energy(x):
        return np.array([sum(w * (min(max(t, a), b) - a) for a, b, w in segs) for t in np.atleast_1d(x)])

    truth = attribute(recorded[0].spans, 0.60, exact_energy, IDLE_W)
    pre = averaged_phase(recorded, "prefill", 8 * 32, IDLE_W, None)
    dec = averaged_phase(recorded, "decode", None, IDLE_W, None)
    assert pre.method.startswith("phase_resolved:16runs")
    assert pre.energy_j == pytest.approx(truth.prefill_j.sum(), rel=0.01)
    assert dec.energy_j == pytest.approx(truth.decode_j.sum(), rel=0.01)
    window_j = recorded[0].model.energy_at(np.array([0.60]))[0]
    assert pre.energy_j + dec.energy_j + IDLE_W * 0.10 == pytest.approx(window_j, rel=0.01)
