"""Edge-corrected energy: a coarse energy counter for the bulk, the fine power series at the edges.

An NVML energy counter moves in steps, every period T (~100 ms on the H200): a read at time t
returns the energy up to the latest update u <= t, so a raw counter delta covers [u0, u1] instead
of the window [t0, t1] and can gain or lose up to one step at each edge. With the update instants
known, for any two counter reads a and b (values Ca, Cb, latest updates ua, ub)::

    E[t0, t1] = Cb - Ca + S[t0, ua] + S[ub, t1]

where S is the integral of the driver's ~50 Hz power series (signed: S[x, y] = -S[y, x]). The
counter supplies every whole update period, the series only the partial periods at the edges.

Update instants come from counter reads taken a few ms apart: two such reads with different values
bracket an update. The brackets are numbered by update period (``u_k``); every read is then
placed in its update period (by value equality with a bracketing read, else by the fit, an
ambiguous case settled by which candidate agrees with the series). Without any bracket the phase is
unknown and the raw delta is kept (method ``counter``) with its quantisation as uncertainty.

:func:`corrected_energy` works for any [t0, t1] covered by the reads and the series (a whole
window or a phase inside it), per device, and returns the energy with its uncertainty parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Brackets wider than this fraction of the period say nothing useful about the phase.
MAX_BRACKET_FRACTION = 0.5
#: Relative series-vs-counter error assumed when the window is too short to measure it
#: (H200: the driver series integrates to within 0.3-0.5 % of the counter).
DEFAULT_SERIES_REL_ERROR = 0.005
#: Spans shorter than this many periods do not measure the series/counter ratio.
MIN_RATIO_PERIODS = 5
#: Brackets spanning fewer update periods than this keep the nominal period...
FIT_PERIOD_SPAN = 8
#: ...whose relative sd is this (\"about 100 ms\").
PERIOD_REL_SD = 0.005


@dataclass(frozen=True)
class CounterReads:
    """Counter reads of one window: call start and end times (window clock) and values (n, devices)."""

    t_lo: np.ndarray
    t_hi: np.ndarray
    values: np.ndarray

    @classmethod
    def from_list(cls, reads: list[tuple[float, float, np.ndarray | None]], devices: int) -> CounterReads:
        """From ``(t_lo, t_hi, values)`` tuples, sorted by time (reads without values dropped)."""
        kept = sorted((r for r in reads if r[2] is not None), key=lambda r: 0.5 * (r[0] + r[1]))
        if not kept:
            return cls(np.empty(0), np.empty(0), np.empty((0, devices)))
        return cls(np.array([r[0] for r in kept], dtype=float), np.array([r[1] for r in kept], dtype=float),
                   np.vstack([np.asarray(r[2], dtype=float) for r in kept]))

    @property
    def n(self) -> int:
        return int(self.t_lo.size)

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * (self.t_lo + self.t_hi)


@dataclass(frozen=True)
class UpdateModel:
    """Counter update instants: the bracketed ones (``k``, ``centre``, ``half``) and the period between.

    An instant is predicted from the nearest bracket, so an uncertain period only costs over the
    few periods between that bracket and the instant asked for.
    """

    period: float
    period_sd: float
    k: np.ndarray
    centre: np.ndarray
    half: np.ndarray

    @property
    def n_brackets(self) -> int:
        return int(self.k.size)

    def _near(self, k: int) -> int:
        """The bracket that predicts update ``k`` best (narrow and close)."""
        sd = np.hypot(self.half / math.sqrt(3.0), (self.k - k) * self.period_sd)
        return int(np.argmin(sd))

    def instant(self, k: int) -> float:
        i = self._near(k)
        return float(self.centre[i] + (k - self.k[i]) * self.period)

    def sd(self, k: int) -> float:
        """Standard deviation of :meth:`instant`: the bracket (uniform) and the period error x distance."""
        i = self._near(k)
        return math.hypot(float(self.half[i]) / math.sqrt(3.0), (k - int(self.k[i])) * self.period_sd)

    def index_at(self, t: float) -> int:
        """The index of the latest update at or before ``t``."""
        i = int(np.argmin(np.abs(self.centre - t)))
        return int(self.k[i]) + math.floor((t - self.centre[i]) / self.period + 1e-12)


@dataclass(frozen=True)
class EdgeResult:
    """One device's energy over [t0, t1] and how it was obtained."""

    energy_j: float
    raw_counter_j: float | None
    series_j: float | None
    method: str  # "counter+series", "counter", "series"
    quantisation_j: float
    series_counter_j: float
    model: UpdateModel | None = None
    ratio: float | None = None  # series / counter over the whole periods used
    cuts: tuple[float, ...] = ()  # instants where the series was cut (for its resolution)

    @property
    def corrected(self) -> bool:
        return self.method == "counter+series"


def integrate(t: np.ndarray, p: np.ndarray, a: float, b: float) -> float:
    """Signed integral of the piecewise-linear series (t, p) from ``a`` to ``b``; constant beyond its ends."""
    if t.size == 0 or a == b:
        return 0.0
    if a > b:
        return -integrate(t, p, b, a)
    inside = (t > a) & (t < b)
    tt = np.concatenate(([a], t[inside], [b]))
    pp = np.interp(tt, t, p)
    return float(np.sum(0.5 * (pp[1:] + pp[:-1]) * np.diff(tt)))


def brackets(reads: CounterReads, j: int, period: float) -> list[tuple[int, float, float]]:
    """``(index of the read after, centre, half-width)`` of each narrow bracket of device ``j``."""
    out = []
    v = reads.values[:, j]
    for i in range(1, reads.n):
        if v[i] != v[i - 1]:
            lo, hi = reads.t_lo[i - 1], reads.t_hi[i]
            if hi - lo <= MAX_BRACKET_FRACTION * period:
                out.append((i, 0.5 * (lo + hi), 0.5 * (hi - lo)))
    return out


def fit_updates(found: list[tuple[int, float, float]], nominal: float) -> UpdateModel | None:
    """Number the brackets by update period and estimate the period.

    Once brackets lie >= ``FIT_PERIOD_SPAN`` periods apart the period is the one every pair of
    brackets allows (the nominal one when it is allowed), else it is the nominal one with a
    ``PERIOD_REL_SD`` prior.
    """
    if not found:
        return None
    centres = np.array([c for _, c, _ in found])
    half = np.array([h for _, _, h in found])
    k = np.zeros(centres.size, dtype=int)
    step = nominal
    for i in range(1, centres.size):  # walk forward so a slightly-off nominal period never skips a step
        k[i] = k[i - 1] + round((centres[i] - centres[i - 1]) / step)
        if k[i] - k[0] >= FIT_PERIOD_SPAN:
            step = (centres[i] - centres[0]) / (k[i] - k[0])
    period, period_sd = nominal, PERIOD_REL_SD * nominal
    if int(k[-1] - k[0]) >= FIT_PERIOD_SPAN:
        period, period_sd = _period(k, centres, half, nominal, step)
    return UpdateModel(float(period), period_sd, k, centres, half)


def _period(k: np.ndarray, centres: np.ndarray, half: np.ndarray, nominal: float,
            step: float) -> tuple[float, float]:
    """The period every pair of brackets allows (the nominal one when allowed, else the middle of the
    allowed range), else (the brackets disagree) the end-to-end slope."""
    lo, hi = -math.inf, math.inf
    for i in range(k.size):
        for j in range(i + 1, k.size):
            dk = int(k[j] - k[i])
            if dk:
                dc, w = centres[j] - centres[i], half[i] + half[j]
                lo, hi = max(lo, (dc - w) / dk), min(hi, (dc + w) / dk)
    if lo <= hi:
        return (nominal if lo <= nominal <= hi else 0.5 * (lo + hi)), float((hi - lo) / math.sqrt(12.0))
    span = int(k[-1] - k[0])  # jitter: the brackets disagree; the slope and its scatter
    return float(step), float(math.hypot(half[0], half[-1]) / math.sqrt(3.0) / span)


def read_indices(reads: CounterReads, j: int, model: UpdateModel, found: list[tuple[int, float, float]],
                 t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The update period (index k of its latest update) of every read of device ``j``."""
    v = reads.values[:, j]
    known: dict[float, int] = {}
    for (i, _, _), k in zip(found, model.k):
        known[v[i]] = int(k)
        known.setdefault(v[i - 1], int(k) - 1)
    idx = np.empty(reads.n, dtype=int)
    anchors = [(i, known[v[i]]) for i in range(reads.n) if v[i] in known]
    for i in range(reads.n):
        if v[i] in known:
            idx[i] = known[v[i]]
        else:
            idx[i] = _resolve(reads, j, i, model, anchors, t, p)
    return idx


def _resolve(reads: CounterReads, j: int, i: int, model: UpdateModel, anchors: list[tuple[int, int]],
             t: np.ndarray, p: np.ndarray) -> int:
    """Index of a read not tied to a bracket: the fit, or (near an update) the candidate the series agrees with."""
    k = model.index_at(reads.mid[i])
    margin = 3.0 * model.sd(k + 1) + 0.5 * (reads.t_hi[i] - reads.t_lo[i])
    near = min(reads.mid[i] - model.instant(k), model.instant(k + 1) - reads.mid[i]) < margin
    if not near or not anchors:
        return k
    a, ka = min(anchors, key=lambda ak: abs(reads.mid[ak[0]] - reads.mid[i]))
    dv = reads.values[i, j] - reads.values[a, j]
    cands = [c for c in (k - 1, k, k + 1) if model.instant(c) <= reads.t_hi[i] + margin]
    return min(cands, key=lambda c: abs(dv - integrate(t, p, model.instant(ka), model.instant(c))))


def corrected_energy(t: np.ndarray, p: np.ndarray, reads: CounterReads, t0: float, t1: float,
                     period: float | None, j: int = 0) -> EdgeResult:
    """Energy of device ``j`` over [t0, t1] from counter ``reads`` and power series (t, p[:, j] or p).

    ``period`` is the nominal counter update period (None: an exact counter, no correction).
    """
    pj = p[:, j] if p.ndim == 2 else p
    series = integrate(t, pj, t0, t1) if t.size else None
    a, b = _edge_reads(reads, t0, t1)
    if a is None or b is None:
        if series is None:
            raise ValueError("neither counter reads nor a power series cover the interval")
        return _series_result(series, None, t0, t1)
    raw = float(reads.values[b, j] - reads.values[a, j])
    mean_p = raw / (t1 - t0) if t1 > t0 else 0.0
    if not period or period < 0.01:  # exact (replay) or fine-grained (RAPL, CPU time) counter: nothing to correct
        q = abs(mean_p) * (period or 0.0) / math.sqrt(6.0)
        return EdgeResult(raw, raw, series, "counter", q, 0.0)
    if series is not None and (t1 - t0 < period or (raw == 0.0 and series > 0.0)):
        # under one update period the counter says (next to) nothing: 0 or one whole step
        return _series_result(series, raw, t0, t1)
    found = brackets(reads, j, period)
    model = fit_updates(found, period)
    if model is None or series is None:
        return EdgeResult(raw, raw, series, "counter", abs(mean_p) * period / math.sqrt(6.0), 0.0, model)
    idx = read_indices(reads, j, model, found, t, pj)
    a, b = _best_reads(reads, idx, model, t0, t1)
    ua, ub = model.instant(int(idx[a])), model.instant(int(idx[b]))
    bulk = float(reads.values[b, j] - reads.values[a, j])
    head, tail = integrate(t, pj, t0, ua), integrate(t, pj, ub, t1)
    energy = bulk + head + tail
    quant = math.hypot(model.sd(int(idx[a])) * float(np.interp(ua, t, pj)),
                       model.sd(int(idx[b])) * float(np.interp(ub, t, pj)))
    ratio = None
    if ub - ua >= MIN_RATIO_PERIODS * model.period and bulk > 0:
        ratio = integrate(t, pj, ua, ub) / bulk
    rel = abs(ratio - 1.0) if ratio is not None else DEFAULT_SERIES_REL_ERROR
    return EdgeResult(energy, raw, series, "counter+series", quant, rel * (abs(head) + abs(tail)), model, ratio,
                      (t0, ua, ub, t1))


def _series_result(series: float, raw: float | None, t0: float, t1: float) -> EdgeResult:
    """The series alone over [t0, t1] (no counter reads, or an interval under one update period)."""
    return EdgeResult(series, raw, series, "series", 0.0, abs(series) * DEFAULT_SERIES_REL_ERROR, cuts=(t0, t1))


def _edge_reads(reads: CounterReads, t0: float, t1: float) -> tuple[int | None, int | None]:
    """The reads nearest the two ends of [t0, t1] (None when there are none)."""
    if reads.n == 0:
        return None, None
    mid = reads.mid
    return int(np.argmin(np.abs(mid - t0))), int(np.argmin(np.abs(mid - t1)))


def _best_reads(reads: CounterReads, idx: np.ndarray, model: UpdateModel, t0: float, t1: float) -> tuple[int, int]:
    """Reads whose update instants lie closest to t0 (preferring inside the interval) and to t1."""
    u = np.array([model.instant(int(k)) for k in idx])
    start_cost = np.abs(u - t0) + np.where(u < t0, model.period, 0.0) + np.where(u > t1, np.inf, 0.0)
    end_cost = np.abs(u - t1) + np.where(u > t1, model.period, 0.0)
    return int(np.argmin(start_cost)), int(np.argmin(end_cost))
