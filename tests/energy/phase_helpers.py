"""Synthetic windows with known phase powers: a piecewise-constant power profile sampled like the
driver buffer (every ``1/hz`` s from a chosen offset), the counter being its exact integral."""

from __future__ import annotations

import numpy as np

from pytest_llenergy.config.timeline import PhaseTimeline, RequestTiming
from pytest_llenergy.energy.measurement import Measurement, WindowInputs, build_measurement
from pytest_llenergy.energy.sampler import Timeseries
from pytest_llenergy.energy.sources.base import DeviceInfo

IDLE_W, PREFILL_W, DECODE_W = 120.0, 600.0, 300.0


def batches_profile(n_batches: int, prefill_s: float, decode_s: float, gap_s: float, lead_s: float = 0.05):
    """Static batches: (segments [(t0, t1, watts)], requests per batch boundaries, duration)."""
    segs, bounds, t = [], [], lead_s
    segs.append((0.0, lead_s, IDLE_W))
    for _ in range(n_batches):
        segs += [(t, t + prefill_s, PREFILL_W), (t + prefill_s, t + prefill_s + decode_s, DECODE_W),
                 (t + prefill_s + decode_s, t + prefill_s + decode_s + gap_s, IDLE_W)]
        bounds.append((t, t + prefill_s, t + prefill_s + decode_s))
        t += prefill_s + decode_s + gap_s
    return segs, bounds, t


def power_at(segs, x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape, IDLE_W)
    for a, b, w in segs:
        out[(x >= a) & (x < b)] = w
    return out


def exact(segs, watts: float) -> float:
    return sum((b - a) * w for a, b, w in segs if w == watts)


def sensed(segs, t: np.ndarray, sensor_s: float, lag_s: float = 0.0) -> np.ndarray:
    """What a sensor reports at each stamp: the mean power over [t - lag - sensor_s, t - lag]."""
    if sensor_s <= 0:
        return power_at(segs, t - lag_s)
    fine = np.linspace(0.0, 1.0, 401)
    grid = (t - lag_s)[:, None] - sensor_s * fine[None, :]
    return power_at(segs, grid.ravel()).reshape(grid.shape).mean(axis=1)


def window(segs, duration: float, hz: float = 50.0, offset: float = 0.0, baseline: float | None = IDLE_W,
           sensor_s: float = 0.0, lag_s: float = 0.0) -> tuple[Timeseries, Measurement]:
    """A replay window sampled at ``hz`` from ``offset``; each sample averages the last ``sensor_s``
    of power, ``lag_s`` late (0, 0: point samples)."""
    t = np.arange(offset, duration, 1.0 / hz)
    p = sensed(segs, t, sensor_s, lag_s)[:, None]
    series = Timeseries(t, p, ("replay0",), duration, mode="driver", nominal_hz=hz)
    covered = sum(min(b, duration) - a for a, b, _ in segs if a < duration)
    energy = sum((min(b, duration) - a) * w for a, b, w in segs if a < duration) + IDLE_W * (duration - covered)
    m = build_measurement(WindowInputs(
        name="generate", kind="replay", estimated=False, simulated=True, has_counter=True, counter_period_s=None,
        devices=[DeviceInfo("replay0", "trace", "u", 0)], duration_s=duration, series=series,
        counters=(np.array([0.0]), np.array([energy])), baseline_w={"replay0": baseline} if baseline else None))
    return series, m


def timeline(bounds, batch: int, tokens_in: int = 32, tokens_out: int = 16, host0: float = 500.0
             ) -> PhaseTimeline:
    reqs = [RequestTiming(f"b{i}r{j}", host0 + s, host0 + f, host0 + e, tokens_in, tokens_out)
            for i, (s, f, e) in enumerate(bounds) for j in range(batch)]
    return PhaseTimeline(clock="perf_counter", source="synthetic", requests=reqs)
