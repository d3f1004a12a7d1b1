"""Phase-resolved averaging: short phases measured by repetition (Yang et al., "Part-time Power
Measurements").

A prefill at batch 32 lasts about one driver sample. Run the workload several times, each at a
random offset to the sample grid; align every run's series on its own phase boundaries and pool
the samples that fall inside each phase. With random offsets the pooled samples are spread
uniformly over the phase, so their mean estimates the phase's time-averaged power without bias;
energy per run = that mean power x the mean phase duration per run. Standard uncertainty: the
standard error of the pooled samples x duration, with the duration's own standard error and the
calibration term added in quadrature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pytest_llenergy.energy.attribution import union_segments
from pytest_llenergy.energy.phases import PhaseFigures, WindowPhases


@dataclass
class PooledPhase:
    """Samples of one phase pooled over runs, and each run's total phase duration."""

    power: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    intervals: int = 0


def phase_segments(run: WindowPhases, phase: str) -> list[tuple[float, float]]:
    start = np.array([s.start for s in run.spans])
    first = np.array([s.first for s in run.spans])
    end = np.array([s.end for s in run.spans])
    return union_segments(start, first) if phase == "prefill" else union_segments(first, end)


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


def pool(runs: Sequence[WindowPhases], phase: str) -> PooledPhase:
    """Every run's samples (lag-shifted, one common calibration) inside its own ``phase`` segments."""
    out = PooledPhase()
    scale = common_scale(runs)
    for run in runs:
        segs = phase_segments(run, phase)
        t, p = run_samples(run)
        p = p * scale
        inside = np.zeros(t.shape, dtype=bool)
        for a, b in segs:
            inside |= (t >= a) & (t < b)
        out.power.extend(p[inside].tolist())
        out.durations.append(float(sum(b - a for a, b in segs)))
        out.intervals += len(segs)
    return out


def averaged_phase(runs: Sequence[WindowPhases], phase: str, tokens: int | None,
                   baseline_w: float | None, baseline_se_w: float | None) -> PhaseFigures | None:
    """Per-run figures of ``phase`` from all runs; None when no sample fell inside it."""
    pooled = pool(runs, phase)
    n = len(pooled.power)
    if n == 0 or not pooled.durations:
        return None
    power = np.asarray(pooled.power)
    mean_p = float(power.mean())
    durations = np.asarray(pooled.durations)
    duration = float(durations.mean())
    se_p = float(power.std(ddof=1) / math.sqrt(n)) if n > 1 else mean_p
    se_d = float(durations.std(ddof=1) / math.sqrt(durations.size)) if durations.size > 1 else 0.0
    rel_cal = math.hypot(max(r.model.rel_uncertainty for r in runs), scale_se(runs))
    energy = mean_p * duration
    u = math.sqrt((se_p * duration) ** 2 + (mean_p * se_d) ** 2 + (rel_cal * energy) ** 2)
    adjusted = energy - baseline_w * duration if baseline_w is not None else None
    adj_u = math.hypot(u, (baseline_se_w or 0.0) * duration) if adjusted is not None else None
    flags = ("few_samples",) if n < 30 else ()
    return PhaseFigures(
        energy_j=energy, adjusted_energy_j=adjusted, duration_s=duration, tokens=tokens,
        energy_per_token_j=energy / tokens if tokens else None,
        adjusted_energy_per_token_j=adjusted / tokens if tokens and adjusted is not None else None,
        mean_power_w=mean_p, uncertainty_j=u, adjusted_uncertainty_j=adj_u,
        intervals=pooled.intervals, method=f"phase_resolved:{len(runs)}runs:{n}samples", flags=flags)


def aligned_profile(runs: Sequence[WindowPhases], bin_s: float, before_s: float, after_s: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean power against time since each prefill start (bin centres, mean W, samples per bin)."""
    edges = np.arange(-before_s, after_s + bin_s, bin_s)
    sums = np.zeros(edges.size - 1)
    counts = np.zeros(edges.size - 1)
    for run in runs:
        t, p = run_samples(run)
        p = p * common_scale(runs)
        for a, _ in phase_segments(run, "prefill"):
            tau = t - a
            idx = np.digitize(tau, edges) - 1
            ok = (idx >= 0) & (idx < sums.size)
            np.add.at(sums, idx[ok], p[ok])
            np.add.at(counts, idx[ok], 1)
    mean = np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)
    return 0.5 * (edges[1:] + edges[:-1]), mean, counts
