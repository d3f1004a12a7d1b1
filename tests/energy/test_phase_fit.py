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
