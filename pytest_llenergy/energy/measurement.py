"""The figures of one measured window, computed from edge counters and sampled power.

The record is ``config/records.py``'s ``WindowEnergy`` (``Measurement``) with ``DeviceEnergy`` per
device (``DeviceMeasurement``): the same model a stored result holds. Definitions:

- counter energy: the raw difference of the cumulative energy counter read at the two edges;
- integral energy: trapezoid integral of sampled power over exactly [0, duration] (the series
  is linearly interpolated at the edges, held constant beyond the first/last sample);
- energy: the edge-corrected counter (``energy/edges.py``: the counter over the whole update
  periods inside the window, the series over the partial ones) when the counter's update instants
  were found, else the raw counter (flag ``edge_phase_unknown``), else the integral; a window
  shorter than one update period uses the series (interpolated between the samples that bracket
  it), never a counter that did not move; the estimate's CPU-time counter less the sampler
  thread's own CPU time; mean power = energy / duration;
- adjusted energy: energy - baseline W x duration, for GPU (nvml) and replay devices only;
- uncertainty: the budget of ``energy/uncertainty.py`` (raw and adjusted, with its parts); the
  flag ``uncertain`` marks an adjusted uncertainty above 5 % of the adjusted energy;
- host_bound: the window did device work (mean GPU utilisation >= 5 %) and the GPU was busy less
  than 70 % of it (None when the source gives no utilisation; False for an idle window);
- throttle seconds: differenced cumulative violation counters, per cause, the worst device;
  ``throttled`` (and a flag ``throttled:<cause>``) when thermal, board-limit or reliability
  throttling is > 0: the causes that threaten comparability. Running at the power limit is normal
  operation on a busy GPU: it is the share ``power_capped_share`` (power-capped seconds /
  duration), never a flag.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_llenergy.config.records import DeviceEnergy, WindowEnergy
from pytest_llenergy.energy import uncertainty as unc
from pytest_llenergy.energy.edges import CounterReads, EdgeResult, corrected_energy
from pytest_llenergy.energy.sampler import Timeseries
from pytest_llenergy.energy.sources.base import DeviceInfo

#: Source kinds whose energy has a baseline subtracted (GPUs and traces of GPUs).
BASELINE_KINDS = frozenset({"nvml", "replay"})
#: Causes that count as throttling (power capping, sync boost, low utilisation and clock totals are
#: reported, not flagged).
THROTTLE_CAUSES = ("thermal", "board_limit", "reliability")
SHORT_WINDOW_UPDATES = 10


def _num(x: Any) -> float | None:
    """A plain float, or None for missing / non-finite values."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _sum(values: Sequence[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else float(sum(values))  # type: ignore[arg-type]


def _ratio(num: float | None, den: float | int | None) -> float | None:
    return None if num is None or not den else num / den


def clip_series(t: np.ndarray, p: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Samples inside [0, duration] plus interpolated edge points; ``p`` is (n, devices)."""
    if t.size == 0:
        return t, p
    inside = (t > 0.0) & (t < duration)
    edges = np.array([0.0, duration])
    at_edges = np.column_stack([np.interp(edges, t, p[:, j]) for j in range(p.shape[1])])
    tt = np.concatenate(([0.0], t[inside], [duration]))
    pp = np.vstack([at_edges[:1], p[inside], at_edges[1:]])
    return tt, pp


def trapezoid(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Trapezoid integral of each column of ``p`` over ``t``."""
    if t.size < 2:
        return np.zeros(p.shape[1])
    return (0.5 * (p[1:] + p[:-1]) * np.diff(t)[:, None]).sum(axis=0)


#: One device's figures and one window's: the result record's own models (declared once, in
#: config/records.py, so that what the meter computes is what a result stores).
DeviceMeasurement = DeviceEnergy
Measurement = WindowEnergy


@dataclass(frozen=True)
class WindowInputs:
    """Everything read for one window, before any figure is computed."""

    name: str
    kind: str
    estimated: bool
    simulated: bool
    has_counter: bool
    counter_period_s: float | None
    devices: Sequence[DeviceInfo]
    duration_s: float
    series: Timeseries
    counters: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    throttle: tuple[Mapping[str, np.ndarray] | None, Mapping[str, np.ndarray] | None] = (None, None)
    baseline_w: Mapping[str, float] | None = None
    baseline_sd_w: Mapping[str, float] | None = None  # sd of the baseline's mean, per device
    baseline_drift_w: Mapping[str, float] | None = None
    reads: CounterReads | None = None  # every counter read of the window (edges and probes)
    input_tokens: int | None = None
    output_tokens: int | None = None
    errors: Sequence[str] = ()
    aborted: bool = False
    #: joules per device the counter charged for the sampler's own work (the estimate's CPU time)
    overhead_j: Sequence[float] | None = None


def _aux_stat(series: Timeseries, name: str, j: int, fn: Any) -> float | None:
    values = series.aux.get(name)
    if values is None or values.shape[0] == 0:
        return None
    mask = (series.t_s >= 0) & (series.t_s <= series.duration_s)
    col = values[mask, j] if mask.any() else values[:, j]
    col = col[np.isfinite(col)]
    return _num(fn(col)) if col.size else None


def _throttle(w: WindowInputs) -> list[dict[str, float]]:
    before, after = w.throttle
    per_dev: list[dict[str, float]] = [{} for _ in w.devices]
    if before is None or after is None:
        return per_dev
    for cause in before.keys() & after.keys():
        diff = (np.asarray(after[cause], dtype=np.int64) - np.asarray(before[cause], dtype=np.int64))
        for j, ns in enumerate(diff):
            per_dev[j][cause] = max(float(ns), 0.0) / 1e9
    return per_dev


def _edge(w: WindowInputs, j: int) -> EdgeResult | None:
    """Device ``j``'s energy from the counter reads (edge-corrected where possible) and the series."""
    t, p = w.series.t_s, w.series.power_w
    c0, c1 = w.counters
    if c0 is None or c1 is None or not w.has_counter:
        return corrected_energy(t, p, _NO_READS, 0.0, w.duration_s, None, j) if t.size else None
    edges_only = np.array([0.0, w.duration_s])
    reads = w.reads if w.reads is not None and w.reads.n >= 2 else CounterReads(edges_only, edges_only, np.vstack([c0, c1]))
    return corrected_energy(t, p, reads, 0.0, w.duration_s, w.counter_period_s, j)


_NO_READS = CounterReads(np.empty(0), np.empty(0), np.empty((0, 1)))


def _raw_parts(w: WindowInputs, edge: EdgeResult | None, j: int) -> dict[str, float]:
    if edge is None:
        return {}
    p = w.series.power_w[:, j] if w.series.power_w.size else w.series.power_w
    short = unc.series_resolution_j(w.series.t_s, p, edge.cuts)
    if edge.method == "series":
        short = math.hypot(short, unc.series_gap_j(w.series.t_s, p, 0.0, w.duration_s))
    return {"counter_quantisation": edge.quantisation_j, "series_counter": edge.series_counter_j,
            "short_window": short}


def _devices(w: WindowInputs, tt: np.ndarray, pp: np.ndarray) -> tuple[list[DeviceMeasurement], list[EdgeResult | None]]:
    integral = trapezoid(tt, pp) if tt.size else None
    throttle = _throttle(w)
    subtract = w.kind in BASELINE_KINDS and w.baseline_w is not None
    dur = w.duration_s
    out, edges = [], []
    for j, dev in enumerate(w.devices):
        edge = _edge(w, j)
        edges.append(edge)
        counter = _num(edge.raw_counter_j) if edge is not None else None
        integ = _num(integral[j]) if integral is not None else None
        energy = _num(edge.energy_j) if edge is not None else integ
        if energy is not None and w.overhead_j is not None:  # the sampler's own CPU (the estimate)
            energy = max(energy - float(w.overhead_j[j]), 0.0)
        base = _num(w.baseline_w.get(dev.label)) if subtract else None  # type: ignore[union-attr]
        adjusted = energy - base * dur if energy is not None and base is not None else None
        util = _aux_stat(w.series, "gpu_util_pct", j, np.mean)
        raw_u = unc.quadrature(_raw_parts(w, edge, j).values()) if edge is not None else None
        out.append(DeviceMeasurement(
            device=dev.label, name=dev.name, uuid=dev.uuid,
            counter_energy_j=counter, integral_energy_j=integ, energy_j=energy,
            baseline_power_w=base, adjusted_energy_j=adjusted,
            mean_power_w=_ratio(energy, dur), peak_power_w=_num(pp[:, j].max()) if tt.size else None,
            peak_memory_mb=_aux_stat(w.series, "memory_used_mb", j, np.max),
            mean_utilization_pct=util,
            max_temperature_c=_aux_stat(w.series, "temperature_c", j, np.max),
            throttle_s=throttle[j], edge_method=edge.method if edge is not None else None,
            uncertainty_j=raw_u, host_bound=unc.host_bound(util),
        ))
    return out, edges


def _budget(w: WindowInputs, devs: list[DeviceMeasurement], edges: list[EdgeResult | None]) -> unc.Budget | None:
    if not edges or any(e is None for e in edges):
        return None
    raw = [_raw_parts(w, e, j) for j, e in enumerate(edges)]
    base = None
    if all(d.adjusted_energy_j is not None for d in devs):
        labels = [d.device for d in devs]
        sd = {k: float((w.baseline_sd_w or {}).get(k, 0.0)) for k in labels}
        drift = {k: float((w.baseline_drift_w or {}).get(k, 0.0)) for k in labels}
        base = unc.baseline_parts(w.duration_s, sd, drift)
    return unc.combine(raw, base)


def _flags(w: WindowInputs, devs: list[DeviceMeasurement], edges: list[EdgeResult | None],
           period: float, n: int) -> list[str]:
    flags = []
    if w.duration_s < SHORT_WINDOW_UPDATES * period:
        flags.append("short_window")
    if any(d.counter_energy_j is None for d in devs):
        flags.append("counter_unavailable")
    elif w.counter_period_s and any(e is not None and e.method == "counter" for e in edges) and n:
        flags.append("edge_phase_unknown")
    if w.series.gaps:
        flags.append("sampler_gaps")
    if n == 0:
        flags.append("no_samples")
    for err in dict.fromkeys(w.errors):
        flags.append(f"source_error:{err}")
    if w.aborted:
        flags.append("aborted")
    return flags


def _window_util(devs: list[DeviceMeasurement]) -> float | None:
    utils = [d.mean_utilization_pct for d in devs if d.mean_utilization_pct is not None]
    return float(np.mean(utils)) if utils else None


def token_figures(energy: float | None, adjusted: float | None, input_tokens: int | None,
                  output_tokens: int | None) -> dict[str, Any]:
    """Token counts and the per-token figures they give (None without output tokens)."""
    tokens = (input_tokens or 0) + (output_tokens or 0) if output_tokens is not None else None
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "energy_per_output_token_j": _ratio(energy, output_tokens), "energy_per_token_j": _ratio(energy, tokens),
            "adjusted_energy_per_output_token_j": _ratio(adjusted, output_tokens),
            "adjusted_energy_per_token_j": _ratio(adjusted, tokens)}


def with_tokens(m: Measurement, input_tokens: int | None, output_tokens: int | None) -> Measurement:
    """``m`` with new token counts and per-token figures (tokens recorded after the window closed)."""
    return m.model_copy(update=token_figures(m.energy_j, m.adjusted_energy_j, input_tokens, output_tokens))


def build_measurement(w: WindowInputs) -> Measurement:
    """Compute every figure of one window."""
    tt, pp = clip_series(w.series.t_s, w.series.power_w, w.duration_s)
    devs, edges = _devices(w, tt, pp)
    n = w.series.n
    hz = w.series.nominal_hz or None
    counter_ok = w.has_counter and w.counters[0] is not None and w.counters[1] is not None
    period = (w.counter_period_s if counter_ok and w.counter_period_s else 1.0 / (hz or 1.0))
    flags = _flags(w, devs, edges, period, n)
    energy = _sum([d.energy_j for d in devs])
    counter = _sum([d.counter_energy_j for d in devs])
    integral = _sum([d.integral_energy_j for d in devs])
    adjusted = _sum([d.adjusted_energy_j for d in devs])
    mean_power = _ratio(energy, w.duration_s)
    causes = sorted({c for d in devs for c in d.throttle_s})
    throttle = {c: max(d.throttle_s.get(c, 0.0) for d in devs) for c in causes}
    budget = _budget(w, devs, edges)
    uncertain = budget is not None and budget.uncertain(energy, adjusted)
    util = _window_util(devs)
    host_bound = unc.host_bound(util)
    throttled = [c for c in THROTTLE_CAUSES if throttle.get(c, 0.0) > 0.0]
    flags += ["uncertain"] * uncertain + ["host_bound"] * bool(host_bound) + [f"throttled:{c}" for c in throttled]
    corrected = [e.corrected for e in edges if e is not None]
    models = [e.model for e in edges if e is not None and e.model is not None]
    return Measurement(
        name=w.name, source=w.kind, duration_s=float(w.duration_s),
        estimated=w.estimated, simulated=w.simulated,
        energy_j=energy, counter_energy_j=counter, integral_energy_j=integral,
        disagreement_pct=(integral - energy) / energy * 100.0 if integral is not None and counter and energy else None,
        adjusted_energy_j=adjusted,
        baseline_power_w=_sum([d.baseline_power_w for d in devs]),
        mean_power_w=mean_power,
        peak_power_w=_num(pp.sum(axis=1).max()) if tt.size else None,
        **token_figures(energy, adjusted, w.input_tokens, w.output_tokens),
        edge_corrected=all(corrected) if corrected else None,
        edge_method="+".join(sorted({e.method for e in edges if e is not None})) or None,
        counter_period_s=float(np.mean([m.period for m in models])) if models else (w.counter_period_s if counter_ok else None),
        uncertainty_j=budget.uncertainty_j if budget is not None else None,
        adjusted_uncertainty_j=budget.adjusted_uncertainty_j if budget is not None else None,
        uncertainty_parts_j=dict(budget.parts) if budget is not None else {},
        uncertain=uncertain, mean_utilization_pct=util, host_bound=host_bound,
        n_samples=n, sample_hz=hz,
        throttled=bool(throttled), throttle_s=throttle,
        power_capped_share=_ratio(throttle["power"], w.duration_s) if "power" in throttle else None,
        flags=flags, devices=devs,
    )
