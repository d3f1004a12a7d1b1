"""Phase powers fitted through the sensor's averaging window (phase-resolved deconvolution).

A driver power sample is not the power at its timestamp: it reports the mean power over a window
of ``window_s`` that ends ``lag_s`` before the stamp. Pooling the samples whose stamps fall inside a
phase (:mod:`.phase_average`) therefore smears a short, high-power prefill into the decode that
follows: on the H200 a 24 ms prefill at batch 32 lost 25-55 % of its energy that way.

With the phase boundaries known from the engine's stamps, the power is modelled as constant across
the runs in each of three disjoint kinds of time: prefill-active (some request in prefill, steps
that also decode others included: a continuous-batching engine mixes them), decode-only, and the
rest; every sample is then a known linear combination of those powers, weighted by how much of its
averaging window each kind occupies. Least squares over all samples of all runs (taken at random
offsets to the sample grid) recovers the powers. The modelled energy of each run is then shared
among the phases by token work, as the direct split shares the measured energy
(:func:`~pytest_llenergy.energy.attribution.attribute`): mixed time goes to prefill and decode in
proportion to their tokens, so prefill + decode + other close on the model. (Overlapping phase
spans used as separate regressors would count mixed time twice: on vLLM at 256 prompts per call
that took 27 % off the prefill's power.) The sensor's window and lag are either given
(``measurement.phases.sample_window_s`` / ``sample_lag_s``) or chosen by the smallest residual over
a grid (:func:`best_fit`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pytest_llenergy.energy.phase_average import (
    common_scale,
    figures_from_powers,
    occupied,
    occupied_seconds,
    partition,
    run_samples,
)
from pytest_llenergy.energy.phases import PhaseFigures, WindowPhases

FITTED = ("prefill", "decode", "other")


@dataclass(frozen=True)
class PhaseFit:
    """Fitted mean power per phase type (W), its standard error, and the fit's quality."""

    power_w: dict[str, float]
    se_w: dict[str, float]
    rms_w: float
    samples: int
    window_s: float
    lag_s: float


def _fraction(segments: list[tuple[float, float]], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Fraction of each window [lo, hi] covered by ``segments`` (a point window when lo == hi)."""
    width = hi - lo
    covered = occupied(segments, hi) - occupied(segments, lo)
    point = np.zeros_like(lo, dtype=bool)
    for a, b in segments:
        point |= (hi >= a) & (hi < b)
    return np.where(width > 0, covered / np.where(width > 0, width, 1.0), point.astype(float))


def design(run: WindowPhases, window_s: float, lag_s: float, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of phase fractions (prefill, decode, other) and the sample powers of one run.

    Samples whose averaging window reaches outside the measured window are left out (the power
    there belongs to no phase of this run)."""
    t, p = run_samples(run)
    hi = t - lag_s
    lo = hi - window_s
    duration = float(run.model.t[-1])
    keep = (lo >= 0.0) & (hi <= duration)
    lo, hi, p = lo[keep], hi[keep], p[keep] * scale
    active, decode_only = partition(run)
    pre = _fraction(active, lo, hi)
    dec = _fraction(decode_only, lo, hi)
    other = np.clip(1.0 - pre - dec, 0.0, 1.0)
    return np.column_stack([pre, dec, other]), p


def fit(runs: Sequence[WindowPhases], window_s: float, lag_s: float) -> PhaseFit | None:
    """Least-squares phase powers of ``runs`` for one sensor window and lag; None when underdetermined."""
    scale = common_scale(runs)
    parts = [design(r, window_s, lag_s, scale) for r in runs]
    x = np.concatenate([d[0] for d in parts]) if parts else np.empty((0, 3))
    y = np.concatenate([d[1] for d in parts]) if parts else np.empty(0)
    if x.shape[0] and x[:, 2].sum() < len(runs):
        # "other" (host gaps between batches) holds less than one sample's worth per run: its power
        # cannot be resolved, so it is pooled with the decode it follows rather than fitted wildly
        x = np.column_stack([x[:, 0], x[:, 1] + x[:, 2], np.zeros(x.shape[0])])
    used = [k for k in range(3) if x.shape[0] and np.any(x[:, k] > 0)]
    if x.shape[0] <= len(used) + 1 or len(used) < 2:
        return None
    xs = x[:, used]
    coef, _, rank, _ = np.linalg.lstsq(xs, y, rcond=None)
    if rank < len(used):
        return None
    resid = y - xs @ coef
    dof = y.size - len(used)
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.pinv(xs.T @ xs)
    power = {FITTED[k]: float(c) for k, c in zip(used, coef)}
    se = {FITTED[k]: float(math.sqrt(max(cov[i, i], 0.0))) for i, k in enumerate(used)}
    return PhaseFit(power, se, math.sqrt(sigma2), int(y.size), window_s, lag_s)


def best_fit(runs: Sequence[WindowPhases], windows: Sequence[float], lags: Sequence[float]) -> PhaseFit | None:
    """The (window, lag) pair of the grid whose fit leaves the smallest residual."""
    fits = [f for w in windows for g in lags if (f := fit(runs, w, g)) is not None]
    return min(fits, key=lambda f: f.rms_w) if fits else None


def fitted_phase(runs: Sequence[WindowPhases], phase: str, result: PhaseFit, tokens: int | None,
                 baseline_w: float | None, baseline_se_w: float | None) -> PhaseFigures | None:
    """Per-run figures of ``phase`` from a fit: each kind of time's fitted power x the seconds of it
    that token work gives the phase, with the uncertainty of both; None when the phase draws on a kind
    of time the fit has no power for (no sample window overlapped it), as the pooled fallback does."""
    if phase not in ("prefill", "decode") or phase not in result.power_w:
        return None
    seconds = [occupied_seconds(r) for r in runs]
    drawn = [k for k in ("prefill", "decode") if any(s[k][phase] > 0 for s in seconds)]
    if any(k not in result.power_w for k in drawn):
        return None
    power = {k: result.power_w[k] for k in drawn}
    se_w = {k: result.se_w[k] for k in drawn}
    method = (f"phase_fit:{len(runs)}runs:{result.samples}samples:"
              f"window{1000 * result.window_s:.0f}ms:lag{1000 * result.lag_s:.0f}ms")
    return figures_from_powers(runs, phase, power, se_w, tokens, baseline_w, baseline_se_w, method,
                               ("few_samples",) if result.samples < 30 else (), seconds)
