"""Prefill and decode energy of one measured window, from the engine's own phase timestamps.

The window's power series (all devices, each calibrated to its counter over the whole window, so
the phases add up to the counter's joules) is integrated between the boundaries of every request
(:mod:`.attribution`). Each phase gets energy, baseline-adjusted energy, duration (time at least
one request was in it), tokens, J/token and a standard uncertainty:

- resolution: at each boundary of the phase the interpolated series misplaces up to the power step
  there times one sample period; as a uniform error that is ``|dP| x dt / sqrt(12)`` per boundary,
  added in quadrature over the boundaries (their offsets to the sample grid are independent);
- calibration: the window's relative uncertainty (counter edges, or 0.5 % for an uncalibrated
  integral, the measured H200 agreement of the 50 Hz series) times the phase's energy;
- adjusted figures add the baseline's standard error x the phase duration.

A phase whose typical interval is expected to hold fewer than ``min_samples`` samples is flagged
``below_resolution``; phase-resolved averaging (:mod:`.phase_average`) is the cure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pytest_llenergy.config.timeline import PhaseTimeline
from pytest_llenergy.energy.attribution import Shares, Span, attribute, spread_other, union_segments
from pytest_llenergy.energy.measurement import Measurement, clip_series, trapezoid
from pytest_llenergy.energy.sampler import Timeseries

#: relative uncertainty of a series integral with no counter to calibrate it
UNCALIBRATED_REL = 0.005
PHASES = ("prefill", "decode", "other")


@dataclass(frozen=True)
class PhaseFigures:
    """One phase of one window (keys of :meth:`to_dict` match ``results.schema.PhaseEnergy``)."""

    energy_j: float
    adjusted_energy_j: float | None
    duration_s: float
    tokens: int | None
    energy_per_token_j: float | None
    adjusted_energy_per_token_j: float | None
    mean_power_w: float | None
    uncertainty_j: float
    adjusted_uncertainty_j: float | None
    intervals: int
    method: str = "direct"
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flags"] = list(self.flags)
        return d


@dataclass
class SeriesModel:
    """Total calibrated power of a window as a piecewise-linear curve, with its cumulative integral."""

    t: np.ndarray
    p: np.ndarray
    cum: np.ndarray
    period_s: float
    rel_uncertainty: float
    #: uncalibrated total power, and the (counter, raw integral) totals the calibration came from
    p_raw: np.ndarray | None = None
    calibration: tuple[float, float] | None = None

    def energy_at(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(x, dtype=float), self.t[0], self.t[-1])
        i = np.clip(np.searchsorted(self.t, x, side="right") - 1, 0, self.t.size - 2)
        dt = np.diff(self.t)[i]
        slope = np.divide(self.p[i + 1] - self.p[i], dt, out=np.zeros_like(dt), where=dt > 0)
        dx = x - self.t[i]
        return self.cum[i] + self.p[i] * dx + 0.5 * slope * dx * dx

    def power_at(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.t, self.p)


def series_model(series: Timeseries, window: Measurement, lag_s: float = 0.0) -> SeriesModel | None:
    """The window's series, moved back by ``lag_s``, each device scaled to its counter-based energy
    (``energy_j``: the raw counter today, the edge-corrected figure where the meter provides one)."""
    if series.n == 0 or window.duration_s <= 0:
        return None
    tt, pp = clip_series(series.t_s - lag_s, series.power_w, window.duration_s)
    integral = trapezoid(tt, pp)
    scale = np.ones(pp.shape[1])
    for j, dev in enumerate(window.devices[: pp.shape[1]]):  # the edge-corrected counter where there is one
        if dev.counter_energy_j is not None and dev.energy_j is not None and integral[j] > 0:
            scale[j] = dev.energy_j / integral[j]
    total = (pp * scale[None, :]).sum(axis=1)
    counter = window.energy_j if window.counter_energy_j is not None else None
    calibration = (counter, float(integral.sum())) if counter is not None else None
    seg = 0.5 * (total[1:] + total[:-1]) * np.diff(tt)
    cum = np.concatenate(([0.0], np.cumsum(seg)))
    spacing = np.diff(series.t_s)
    period = float(np.median(spacing)) if spacing.size else (1.0 / series.nominal_hz if series.nominal_hz else 1.0)
    if window.counter_energy_j and window.energy_j and window.uncertainty_j is not None:
        rel = window.uncertainty_j / window.energy_j
    elif window.counter_energy_j:
        rel = 0.0
    else:
        rel = UNCALIBRATED_REL
    return SeriesModel(tt, total, cum, period, rel, pp.sum(axis=1), calibration)


def window_clock(clock: str, edges: Mapping[str, tuple[float, float]], duration: float) -> Callable[[float], float]:
    """Host-clock seconds to window seconds: the window's edges on that clock map linearly onto [0, duration]."""
    if clock not in edges:
        raise ValueError(f"no window edges on clock {clock!r} (have {sorted(edges)})")
    h0, h1 = edges[clock]
    scale = duration / (h1 - h0) if h1 > h0 else 1.0
    return lambda x: (x - h0) * scale


def to_window_time(timeline: PhaseTimeline, edges: Mapping[str, tuple[float, float]],
                   duration: float) -> list[Span]:
    """Requests on the window's time axis."""
    w = window_clock(timeline.clock, edges, duration)
    return [Span(r.request_id, w(r.start_s), w(max(r.first_token_s, r.start_s)), w(max(r.end_s, r.first_token_s)),
                 r.input_tokens, r.output_tokens) for r in timeline.requests]


@dataclass
class WindowPhases:
    """Everything the split of one window produced."""

    phases: dict[str, PhaseFigures]
    spans: list[Span]
    shares: Shares
    model: SeriesModel
    baseline_w: float | None
    flags: list[str] = field(default_factory=list)

    def request_energy(self) -> dict[str, np.ndarray]:
        """Per-request columns: prefill/decode/other/total joules (raw and adjusted)."""
        s = self.shares
        other = spread_other(s.active_j, s.other_j)
        out = {"prefill_energy_j": s.prefill_j, "decode_energy_j": s.decode_j, "other_energy_j": other,
               "energy_j": s.active_j + other}
        if self.baseline_w is not None:
            adj_active = s.prefill_adj_j + s.decode_adj_j
            out["adjusted_energy_j"] = adj_active + spread_other(s.active_j, s.other_adj_j)
        return out


def _boundary_u(model: SeriesModel, points: Sequence[float]) -> float:
    if not points:
        return 0.0
    x = np.asarray(points)
    dp = np.abs(model.power_at(x + model.period_s) - model.power_at(x - model.period_s))
    return float(np.sqrt(np.sum((dp * model.period_s / math.sqrt(12.0)) ** 2)))


def _figures(energy: float, adjusted: float | None, segs: list[tuple[float, float]], tokens: int | None,
             model: SeriesModel, baseline_se_w: float | None, min_samples: int) -> PhaseFigures:
    duration = float(sum(b - a for a, b in segs))
    points = [x for seg in segs for x in seg]
    u = math.hypot(_boundary_u(model, points), model.rel_uncertainty * abs(energy))
    adj_u = math.hypot(u, (baseline_se_w or 0.0) * duration) if adjusted is not None else None
    flags = []
    lengths = [b - a for a, b in segs]
    if lengths and float(np.median(lengths)) < min_samples * model.period_s:
        flags.append("below_resolution")
    return PhaseFigures(
        energy_j=energy, adjusted_energy_j=adjusted, duration_s=duration, tokens=tokens,
        energy_per_token_j=energy / tokens if tokens else None,
        adjusted_energy_per_token_j=adjusted / tokens if tokens and adjusted is not None else None,
        mean_power_w=energy / duration if duration > 0 else None,
        uncertainty_j=u, adjusted_uncertainty_j=adj_u, intervals=len(segs), flags=tuple(flags))


def split_window(series: Timeseries, window: Measurement, timeline: PhaseTimeline,
                 edges: Mapping[str, tuple[float, float]], *, baseline_w: float | None = None,
                 baseline_se_w: float | None = None, lag_s: float = 0.0, min_samples: int = 2) -> WindowPhases | None:
    """Prefill, decode and other figures of one window; None when the window has no samples or requests."""
    model = series_model(series, window, lag_s)
    if model is None or not timeline.requests:
        return None
    spans = to_window_time(timeline, edges, window.duration_s)
    shares = attribute(spans, window.duration_s, model.energy_at, baseline_w or 0.0)
    start = np.array([s.start for s in spans])
    first = np.array([s.first for s in spans])
    end = np.array([s.end for s in spans])
    pre_segs = union_segments(start, first)
    dec_segs = union_segments(first, end)
    busy = union_segments(start, end)
    gaps, prev = [], 0.0
    for a, b in busy:
        if a > prev:
            gaps.append((prev, a))
        prev = max(prev, b)
    if prev < window.duration_s:
        gaps.append((prev, window.duration_s))
    adj = baseline_w is not None
    phases = {
        "prefill": _figures(float(shares.prefill_j.sum()), float(shares.prefill_adj_j.sum()) if adj else None,
                            pre_segs, sum(s.input_tokens for s in spans), model, baseline_se_w, min_samples),
        "decode": _figures(float(shares.decode_j.sum()), float(shares.decode_adj_j.sum()) if adj else None,
                           dec_segs, sum(s.decode_tokens for s in spans), model, baseline_se_w, min_samples),
        "other": _figures(shares.other_j, shares.other_adj_j if adj else None, gaps, None, model,
                          baseline_se_w, 1),
    }
    flags = []
    outside = [s.request_id for s in spans if s.start < 0 or s.end > window.duration_s * (1 + 1e-9)]
    if outside:
        flags.append(f"requests_outside_window:{len(outside)}")
    return WindowPhases(phases, spans, shares, model, baseline_w, flags)
