"""Per-request energy attribution by token work, and the prefill/decode split built on it.

The window is cut at every request's phase boundaries into elementary intervals. In each interval
the energy (the calibrated series integral) is shared among the requests active then, in
proportion to their token work in that interval: a request in prefill does ``input_tokens x
overlap / prefill duration`` prefill tokens, one in decode ``(output_tokens - 1) x overlap /
decode duration`` decode steps (its first token comes from the prefill). Intervals with no active
request (host gaps, idle) are ``other``; for per-request totals that energy is spread over the
requests in proportion to their active energy, so the requests add up to the window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


#: Window-time bounds of one request: (start, first token, end), plus its token counts.
@dataclass(frozen=True)
class Span:
    request_id: str
    start: float
    first: float
    end: float
    input_tokens: int
    output_tokens: int

    @property
    def decode_tokens(self) -> int:
        return max(self.output_tokens - 1, 0)


@dataclass
class Shares:
    """Energy by (request, phase), and the energy of the intervals nobody worked in."""

    prefill_j: np.ndarray
    decode_j: np.ndarray
    prefill_adj_j: np.ndarray
    decode_adj_j: np.ndarray
    other_j: float
    other_adj_j: float

    @property
    def active_j(self) -> np.ndarray:
        return self.prefill_j + self.decode_j


def _overlap(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Overlap of each interval [a_i, b_i] with each span [lo_k, hi_k]: shape (intervals, spans)."""
    return np.clip(np.minimum(b[:, None], hi[None, :]) - np.maximum(a[:, None], lo[None, :]), 0.0, None)


def token_work(spans: Sequence[Span], a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prefill tokens, decode steps) of each span in each interval, shape (intervals, spans)."""
    start = np.array([s.start for s in spans])
    first = np.array([s.first for s in spans])
    end = np.array([s.end for s in spans])
    inp = np.array([s.input_tokens for s in spans], dtype=float)
    dec = np.array([s.decode_tokens for s in spans], dtype=float)
    pre_len = first - start
    dec_len = end - first
    pre = _overlap(a, b, start, first) * np.divide(inp, pre_len, out=np.zeros_like(inp), where=pre_len > 0)
    dcd = _overlap(a, b, first, end) * np.divide(dec, dec_len, out=np.zeros_like(dec), where=dec_len > 0)
    # a zero-length prefill (boundary below clock resolution) still did its tokens: put them at the instant
    for k in np.flatnonzero(pre_len <= 0):
        hit = np.flatnonzero((a <= start[k]) & (start[k] < b))
        if hit.size:
            pre[hit[0], k] = inp[k]
    return pre, dcd


def cut_points(spans: Sequence[Span], duration: float) -> np.ndarray:
    """Sorted unique boundaries of every span, with the window edges, clipped to [0, duration]."""
    pts = [0.0, duration]
    for s in spans:
        pts += [s.start, s.first, s.end]
    return np.unique(np.clip(np.asarray(pts, dtype=float), 0.0, duration))


def attribute(spans: Sequence[Span], duration: float, energy_at: Callable[[np.ndarray], np.ndarray],
              baseline_w: float = 0.0) -> Shares:
    """Share the window's energy among ``spans`` by token work; ``energy_at(x)`` is cumulative joules."""
    pts = cut_points(spans, duration)
    a, b = pts[:-1], pts[1:]
    cum = energy_at(pts)
    e = np.diff(cum)
    e_adj = e - baseline_w * (b - a)
    n = len(spans)
    if n == 0:
        return Shares(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), float(e.sum()), float(e_adj.sum()))
    pre, dcd = token_work(spans, a, b)
    work = pre.sum(axis=1) + dcd.sum(axis=1)
    busy = work > 0
    w = np.divide(1.0, work, out=np.zeros_like(work), where=busy)
    pre_frac, dec_frac = pre * w[:, None], dcd * w[:, None]
    return Shares(
        prefill_j=(pre_frac * e[:, None]).sum(axis=0), decode_j=(dec_frac * e[:, None]).sum(axis=0),
        prefill_adj_j=(pre_frac * e_adj[:, None]).sum(axis=0), decode_adj_j=(dec_frac * e_adj[:, None]).sum(axis=0),
        other_j=float(e[~busy].sum()), other_adj_j=float(e_adj[~busy].sum()),
    )


def spread_other(active: np.ndarray, other: float) -> np.ndarray:
    """``other`` joules spread over requests in proportion to their active energy (equally if none)."""
    total = float(active.sum())
    if active.size == 0:
        return active
    if total > 0:
        return active / total * other
    return np.full(active.shape, other / active.size)


def union_segments(lo: np.ndarray, hi: np.ndarray) -> list[tuple[float, float]]:
    """Merged [lo, hi] intervals (time when at least one request is in the phase)."""
    order = np.argsort(lo)
    out: list[list[float]] = []
    for i in order:
        if hi[i] < lo[i]:
            continue
        if out and lo[i] <= out[-1][1]:
            out[-1][1] = max(out[-1][1], float(hi[i]))
        else:
            out.append([float(lo[i]), float(hi[i])])
    return [(x, y) for x, y in out]


def subtract_segments(segments: list[tuple[float, float]], minus: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of ``segments`` outside every interval of ``minus`` (both lists disjoint and sorted)."""
    out: list[tuple[float, float]] = []
    for a, b in segments:
        pieces = [(a, b)]
        for c, d in minus:
            pieces = [q for x, y in pieces for q in ([(x, y)] if d <= x or c >= y else
                                                     [r for r in ((x, min(c, y)), (max(d, x), y)) if r[1] > r[0]])]
        out += pieces
    return out
