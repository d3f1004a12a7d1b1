"""Phase figures of measured windows: the prefill/decode split, phase-resolved averaging over
repeated runs, per-request attribution tables and serving figures, put into the item's result."""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from pytest_llenergy.energy.phase_average import averaged_phase
from pytest_llenergy.energy.phase_fit import PhaseFit, best_fit, fit, fitted_phase
from pytest_llenergy.energy.phases import WindowPhases, split_window, window_clock
from pytest_llenergy.energy.steady_state import steady_state
from pytest_llenergy.results.requests import write_requests

ATTRIBUTION = "attribution:token_work"


def baseline_terms(meter: Any, base: float | None) -> tuple[float | None, float | None]:
    """(baseline W subtracted from a window, its standard error), summed over devices."""
    reading = meter.baseline
    if base is None or reading is None:
        return base, None
    n = max(int(getattr(reading, "n_samples", 0) or 0), 1)
    sd = math.sqrt(sum(v * v for v in reading.sd_w.values()))
    return base, sd / math.sqrt(n)


def split(meter: Any, window: Any, settings: Any) -> WindowPhases | None:
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


def serving_stats(result: WindowPhases, timeline: Any, arrivals: Any) -> dict[str, Any]:
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


def request_rows(result: WindowPhases, window: Any) -> list[dict[str, Any]]:
    """One attribution row per request (window times in seconds)."""
    cols = result.request_energy()
    timeline = window.timeline
    to_window = window_clock(timeline.clock, window.host_edges, window.result.duration_s)
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


def record(recorder: Any, result: WindowPhases, window: Any, settings: Any) -> None:
    """Put the split of the item's primary window into its result (phases, requests, serving)."""
    fields = recorder.phase_fields
    if "phases" in fields:
        return  # the primary window is the first one with a timeline
    tl = window.timeline
    fields["phases"] = {k: v.to_dict() for k, v in result.phases.items()}
    fields["phase_info"] = {"source": tl.source, "clock": tl.clock, "requests": len(tl.requests),
                            "lag_s": settings.sample_lag_s, "repeats": 0, "flags": list(result.flags)}
    arrivals = recorder.item.config.workload.arrivals
    if arrivals is not None:
        fields["serving"] = serving_stats(result, tl, arrivals)
    if settings.requests:
        run_dir = recorder.run.run_dir
        path = run_dir.path / "requests" / f"{recorder.item.id}.parquet"
        try:
            write_requests(path, request_rows(result, window))
        except (OSError, ImportError) as exc:
            recorder.warnings.append(f"request table not written: {exc}")
        else:
            fields["requests_path"] = str(path.relative_to(run_dir.path))


def resolve(meter_factory: Callable[[], Any], first: WindowPhases, fn: Callable[[], Any], settings: Any,
            baseline: tuple[float | None, float | None], seed: int = 0) -> dict[str, dict[str, Any]]:
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


def sensor_fit(runs: list[WindowPhases], settings: Any) -> PhaseFit | None:
    """Phase powers fitted through the sensor's averaging window (given, or chosen by residual).

    The runs' series are already moved back by ``sample_lag_s``, so the fit's lag is on top of it."""
    if settings.sample_window_s is not None:
        return fit(runs, settings.sample_window_s, 0.0)
    period = runs[0].model.period_s
    return best_fit(runs, windows=[k * period / 2 for k in range(5)], lags=[k * period / 4 for k in range(5)])
