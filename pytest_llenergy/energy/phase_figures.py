"""Phase figures of measured windows: the prefill/decode split of a window, phase-resolved
averaging over repeated runs, per-request attribution rows and serving figures.

Pure computation over the energy meter's windows; the plugin (plugin/measurement/phases.py) puts
the figures into the item's result and writes the request table.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pytest_llenergy.energy.phase_average import averaged_phase
from pytest_llenergy.energy.phase_fit import PhaseFit, best_fit, fit, fitted_phase
from pytest_llenergy.energy.phases import WindowPhases, split_window, window_clock
from pytest_llenergy.energy.steady_state import steady_state

if TYPE_CHECKING:
    from pytest_llenergy.config.phases import ArrivalSettings, PhaseSettings
    from pytest_llenergy.config.timeline import PhaseTimeline
    from pytest_llenergy.energy.meter import EnergyMeter, Window

ATTRIBUTION = "attribution:token_work"


class RunStats(Protocol):
    """What one repeated run returns (the backends' ``GenerationStats`` has these fields)."""

    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def timeline(self) -> PhaseTimeline | None: ...


def baseline_terms(meter: EnergyMeter, base: float | None) -> tuple[float | None, float | None]:
    """(baseline W subtracted from a window, its standard error), summed over devices."""
    reading = meter.baseline
    if base is None or reading is None:
        return base, None
    n = max(int(getattr(reading, "n_samples", 0) or 0), 1)
    sd = math.sqrt(sum(v * v for v in reading.sd_w.values()))
    return base, sd / math.sqrt(n)


def split(meter: EnergyMeter, window: Window, settings: PhaseSettings) -> WindowPhases | None:
    """The direct split of a finished window, or None without a timeline or samples."""
    if window.timeline is None or window.result is None or not window.host_edges:
        return None
    base, se = baseline_terms(meter, window.result.baseline_power_w)
    return split_window(meter.series(window.name), window.result, window.timeline, window.host_edges,
                        baseline_w=base, baseline_se_w=se, lag_s=settings.sample_lag_s,
                        min_samples=settings.min_samples)


def _pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(v * 1000.0 for v in values)

    def q(p: float) -> float:
        k = (len(ordered) - 1) * p
        lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)

    return {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "mean": statistics.fmean(ordered)}


def serving_stats(result: WindowPhases, timeline: PhaseTimeline, arrivals: ArrivalSettings) -> dict[str, Any]:
    """Latency percentiles, achieved rate and the steady state of a serving run."""
    reqs = timeline.requests
    arrived = [r.arrival_s if r.arrival_s is not None else r.start_s for r in reqs]
    ttft = [r.first_token_s - a for r, a in zip(reqs, arrived)]
    e2e = [r.end_s - a for r, a in zip(reqs, arrived)]
    itl = [(r.end_s - r.first_token_s) / (r.output_tokens - 1) for r in reqs if r.output_tokens > 1]
    span = max(arrived) - min(arrived)
    ss = steady_state(result, timeline.max_batch)
    return {"process": arrivals.process, "target_rate_rps": arrivals.rate_rps,
            "achieved_rate_rps": (len(reqs) - 1) / span if span > 0 else None, "requests": len(reqs),
            "ttft_ms": _pct(ttft), "itl_ms": _pct(itl), "e2e_ms": _pct(e2e),
            "steady_state": ss.to_dict() if ss is not None else None}


def request_rows(result: WindowPhases, window: Window) -> list[dict[str, Any]]:
    """One attribution row per request (window times in seconds)."""
    cols = result.request_energy()
    timeline, measured = window.timeline, window.result
    if timeline is None or measured is None:
        return []
    to_window = window_clock(timeline.clock, window.host_edges, measured.duration_s)
    rows = []
    for k, (span, req) in enumerate(zip(result.spans, timeline.requests)):
        arrival = to_window(req.arrival_s) if req.arrival_s is not None else None
        energy = float(cols["energy_j"][k])
        rows.append({
            "request_id": span.request_id, "method": ATTRIBUTION, "arrival_s": arrival, "start_s": span.start,
            "first_token_s": span.first, "end_s": span.end, "input_tokens": span.input_tokens,
            "output_tokens": span.output_tokens, "prefill_energy_j": float(cols["prefill_energy_j"][k]),
            "decode_energy_j": float(cols["decode_energy_j"][k]), "other_energy_j": float(cols["other_energy_j"][k]),
            "energy_j": energy,
            "adjusted_energy_j": float(cols["adjusted_energy_j"][k]) if "adjusted_energy_j" in cols else None,
            "energy_per_output_token_j": energy / span.output_tokens if span.output_tokens else None,
            "ttft_s": span.first - (arrival if arrival is not None else span.start),
            "e2e_s": span.end - (arrival if arrival is not None else span.start),
        })
    return rows


def resolve(meter_factory: Callable[[], EnergyMeter], first: WindowPhases, fn: Callable[[], RunStats],
            settings: PhaseSettings, baseline: tuple[float | None, float | None],
            seed: int = 0) -> dict[str, dict[str, Any]]:
    """Run ``fn`` ``settings.repeats`` more times at random offsets to the sample grid; phase-resolved figures."""
    runs = [first]
    meter = meter_factory()
    rng = random.Random(seed)
    for i in range(settings.repeats):
        time.sleep(rng.uniform(0.0, first.model.period_s))  # a random phase against the sampler's grid
        with meter.measure(f"phase-repeat-{i}") as w:
            stats = fn()
            w.record(stats.input_tokens, stats.output_tokens, timeline=stats.timeline)
        run = split(meter, w, settings)
        if run is not None:
            runs.append(run)
        meter.clear()
    fitted = sensor_fit(runs, settings)
    out = {}
    for name in ("prefill", "decode"):
        direct = first.phases[name]
        fig = fitted_phase(runs, name, fitted, direct.tokens, *baseline) if fitted is not None else None
        if fig is None:
            fig = averaged_phase(runs, name, direct.tokens, baseline[0], baseline[1])
        if fig is not None:
            out[name] = {**fig.to_dict(), "direct_energy_j": direct.energy_j}
    return out


def sensor_fit(runs: list[WindowPhases], settings: PhaseSettings) -> PhaseFit | None:
    """Phase powers fitted through the sensor's averaging window (given, or chosen by residual).

    The runs' series are already moved back by ``sample_lag_s``, so the fit's lag is on top of it."""
    if settings.sample_window_s is not None:
        return fit(runs, settings.sample_window_s, 0.0)
    period = runs[0].model.period_s
    return best_fit(runs, windows=[k * period / 2 for k in range(5)], lags=[k * period / 4 for k in range(5)])
