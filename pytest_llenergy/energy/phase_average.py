"""Phase-resolved averaging: short phases measured by repetition (Yang et al., "Part-time Power
Measurements").

A prefill at batch 32 lasts about one driver sample. Run the workload several times, each at a
random offset to the sample grid; align every run's series on its own phase boundaries and pool
the samples that fall inside each kind of time: prefill-active (some request in prefill, steps a
continuous-batching engine mixes with others' decoding included) and decode-only. With random
offsets the pooled samples are spread uniformly over that time, so their mean estimates its
time-averaged power without bias. Energy per run = each kind's mean power x the seconds of it that
token work gives the phase (:func:`occupied_seconds`: for static batches, no time is mixed, so it is
the phase's mean power x its duration). Standard uncertainty: the pooled samples' standard error x
those seconds, the run-to-run spread of the per-run energies and the calibration term in quadrature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pytest_llenergy.energy.attribution import attribute, subtract_segments, union_segments
from pytest_llenergy.energy.phases import PhaseFigures, WindowPhases


def phase_segments(run: WindowPhases, phase: str) -> list[tuple[float, float]]:
    """Time when at least one request is in ``phase`` ("prefill" or "decode"; they may overlap)."""
    start = np.array([s.start for s in run.spans])
    first = np.array([s.first for s in run.spans])
    end = np.array([s.end for s in run.spans])
    return union_segments(start, first) if phase == "prefill" else union_segments(first, end)


def occupied(segments: list[tuple[float, float]], x: np.ndarray) -> np.ndarray:
    """Seconds of ``segments`` (disjoint) inside [0, x] for every x."""
    out = np.zeros_like(x)
    for a, b in segments:
        out += np.clip(x, a, b) - a
    return out


def partition(run: WindowPhases) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Disjoint (prefill-active, decode-only) segments of one run; the rest is "other"."""
    active = phase_segments(run, "prefill")
    return active, subtract_segments(phase_segments(run, "decode"), active)


def occupied_seconds(run: WindowPhases) -> dict[str, dict[str, float]]:
    """Seconds of each kind of time the model powers, as shared by token work: ``{kind: {phase: s}}``
    (prefill-active time splits between prefill and decode; decode-only time is all decode)."""
    duration = float(run.model.t[-1])
    out = {}
    for kind, segments in zip(("prefill", "decode"), partition(run)):
        def seconds(x: np.ndarray, segments: list[tuple[float, float]] = segments) -> np.ndarray:
            return occupied(segments, np.asarray(x, dtype=float))
        shares = attribute(run.spans, duration, seconds)
        out[kind] = {"prefill": float(shares.prefill_j.sum()), "decode": float(shares.decode_j.sum())}
    return out


def common_scale(runs: Sequence[WindowPhases]) -> float:
    """Counter joules over raw series joules, summed over all runs (one calibration for all).

    Per-run calibration would bias the pool: a run whose samples caught a short high-power phase
    also has its own integral overestimated, so its scale is low exactly when it contributes."""
    cal = [r.model.calibration for r in runs]
    pairs = [c for c in cal if c is not None]
    if len(pairs) < len(cal):
        return 1.0
    raw = sum(c[1] for c in pairs)
    return float(sum(c[0] for c in pairs) / raw) if raw > 0 else 1.0


def scale_se(runs: Sequence[WindowPhases]) -> float:
    """Relative standard error of the common calibration (spread of the per-run ratios)."""
    ratios = [c[0] / c[1] for r in runs if (c := r.model.calibration) is not None and c[1] > 0]
    if len(ratios) < 2:
        return 0.0
    return float(np.std(ratios, ddof=1) / math.sqrt(len(ratios)) / np.mean(ratios))


def run_samples(run: WindowPhases) -> tuple[np.ndarray, np.ndarray]:
    """Real samples (not the interpolated edge points), uncalibrated when the raw series is kept."""
    m = run.model
    p = m.p_raw if m.p_raw is not None else m.p
    return m.t[1:-1], p[1:-1]


def pool(runs: Sequence[WindowPhases], kind: str) -> np.ndarray:
    """Every run's samples (lag-shifted, one common calibration) inside its own ``kind`` of time:
    "prefill" is prefill-active time, "decode" decode-only time (:func:`partition`)."""
    scale = common_scale(runs)
    out = []
    for run in runs:
        t, p = run_samples(run)
        inside = np.zeros(t.shape, dtype=bool)
        for a, b in partition(run)[0 if kind == "prefill" else 1]:
            inside |= (t >= a) & (t < b)
        out.append(p[inside] * scale)
    return np.concatenate(out) if out else np.empty(0)


def figures_from_powers(runs: Sequence[WindowPhases], phase: str, power: dict[str, float], se_w: dict[str, float],
                        tokens: int | None, baseline_w: float | None, baseline_se_w: float | None, method: str,
                        flags: tuple[str, ...], seconds: Sequence[dict[str, dict[str, float]]] | None = None
                        ) -> PhaseFigures:
    """``phase``'s figures from a power per kind of time (prefill-active, decode-only) and the seconds of
    each that token work gives the phase (``seconds``: each run's :func:`occupied_seconds`, computed here
    when not given): energy per run = sum of power x seconds; uncertainty = the powers' standard errors x
    those seconds, the run-to-run spread of the per-run energies and the calibration term in quadrature."""
    seconds = [occupied_seconds(r) for r in runs] if seconds is None else seconds
    mean_s = {k: float(np.mean([s[k][phase] for s in seconds])) for k in power}
    per_run = np.asarray([sum(power[k] * s[k][phase] for k in power) for s in seconds])
    energy = float(per_run.mean())
    attributed_s = sum(mean_s.values())
    segments = [phase_segments(r, phase) for r in runs]
    duration = float(np.mean([sum(b - a for a, b in segs) for segs in segments]))
    se_runs = float(per_run.std(ddof=1) / math.sqrt(per_run.size)) if per_run.size > 1 else 0.0
    rel_cal = math.hypot(max(r.model.rel_uncertainty for r in runs), scale_se(runs))
    u = math.sqrt(sum((se_w[k] * mean_s[k]) ** 2 for k in power) + se_runs**2 + (rel_cal * energy) ** 2)
    adjusted = energy - baseline_w * attributed_s if baseline_w is not None else None
    adj_u = math.hypot(u, (baseline_se_w or 0.0) * attributed_s) if adjusted is not None else None
    return PhaseFigures(
        energy_j=energy, adjusted_energy_j=adjusted, duration_s=duration, tokens=tokens,
        energy_per_token_j=energy / tokens if tokens else None,
        adjusted_energy_per_token_j=adjusted / tokens if tokens and adjusted is not None else None,
        mean_power_w=energy / duration if duration > 0 else None, uncertainty_j=u, adjusted_uncertainty_j=adj_u,
        intervals=sum(len(segs) for segs in segments), method=method, flags=flags)


def averaged_phase(runs: Sequence[WindowPhases], phase: str, tokens: int | None,
                   baseline_w: float | None, baseline_se_w: float | None) -> PhaseFigures | None:
    """Per-run figures of ``phase`` from all runs' pooled samples; None when a kind of time the phase
    draws on holds no sample."""
    if phase not in ("prefill", "decode") or not runs:
        return None
    seconds = [occupied_seconds(r) for r in runs]
    power, se_w, n = {}, {}, 0
    for kind in ("prefill", "decode"):
        if not any(s[kind][phase] > 0 for s in seconds):
            continue
        pooled = pool(runs, kind)
        if pooled.size == 0:
            return None
        power[kind] = float(pooled.mean())
        se_w[kind] = float(pooled.std(ddof=1) / math.sqrt(pooled.size)) if pooled.size > 1 else power[kind]
        n += pooled.size
    if not power:
        return None
    return figures_from_powers(runs, phase, power, se_w, tokens, baseline_w, baseline_se_w,
                               f"phase_resolved:{len(runs)}runs:{n}samples", ("few_samples",) if n < 30 else (),
                               seconds)

