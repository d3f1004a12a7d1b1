"""A simulated 100 ms energy counter under a known power trace, read on the sampler's schedule.

The counter holds ``scale x`` the exact integral of the piecewise-linear trace up to its latest
update (``phase + k x period``, optional jitter per update); each read takes ``read_s`` seconds and
samples the counter at a random instant inside the call. The schedule copies the sampler's: the
start edge read, a burst of reads until the value changes, a targeted burst before the predicted
update every ``probe_every_s``, the end edge read. The power series is the trace's own samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pytest_llenergy.energy.edges import CounterReads


@dataclass
class SimCounter:
    t: np.ndarray
    p: np.ndarray
    period: float = 0.1
    phase: float = 0.0
    scale: float = 1.0
    jitter_s: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        seg = 0.5 * (self.p[1:] + self.p[:-1]) * np.diff(self.t)
        self._e = np.concatenate(([0.0], np.cumsum(seg)))
        self._jit = np.random.default_rng(self.seed).uniform(-1, 1, 1_000_000) * self.jitter_s

    def energy(self, x: float) -> float:
        """Exact integral of the trace from its start to ``x``."""
        i = int(np.clip(np.searchsorted(self.t, x, side="right") - 1, 0, self.t.size - 2))
        px = np.interp(x, self.t, self.p)
        return float(self._e[i] + (x - self.t[i]) * 0.5 * (self.p[i] + px))

    def update_before(self, x: float) -> float:
        k = math.floor((x - self.phase) / self.period)
        u = self.phase + k * self.period + self._jit[k % self._jit.size]
        if u > x:  # jittered later than x: the previous update is the latest
            k -= 1
            u = self.phase + k * self.period + self._jit[k % self._jit.size]
        return u

    def value(self, x: float) -> float:
        return round(self.scale * self.energy(self.update_before(x)), 3)  # mJ resolution

    def truth(self, a: float, b: float) -> float:
        return self.scale * (self.energy(b) - self.energy(a))


def schedule(sim: SimCounter, t0: float, dur: float, rng: np.random.Generator, *, read_s: float = 0.004,
             spacing_s: float = 0.001, probe_every_s: float = 1.0) -> CounterReads:
    """Counter reads of one window [t0, t0 + dur] (times relative to t0), as the sampler takes them."""
    reads: list[tuple[float, float, np.ndarray]] = []

    def read(at: float) -> tuple[float, float]:
        v = sim.value(at + rng.uniform(0, read_s))
        reads.append((at - t0, at + read_s - t0, np.array([v])))
        return at + read_s, v

    end = t0 + dur
    now, first = read(t0 - read_s / 2)  # the start edge read, centred on t0
    last_change = None
    while True:  # burst from the start: until the value changes (bounded)
        now += spacing_s
        if now + read_s > end or now > t0 + 1.5 * sim.period:
            break
        before = now
        now, v = read(now)
        if v != first:
            last_change = before
            break
    while last_change is not None:
        due = last_change + probe_every_s
        k = math.ceil((due - last_change) / sim.period)
        target = last_change + k * sim.period - 3 * (read_s + spacing_s)
        if target + 2 * sim.period > end:
            break
        now, first = read(target)
        while now < target + 1.5 * sim.period:
            now += spacing_s
            before = now
            now, v = read(now)
            if v != first:
                last_change = before
                break
    read(end - read_s / 2)  # the end edge read, centred on t1
    return CounterReads.from_list(reads, 1)


def series(sim: SimCounter, t0: float, dur: float) -> tuple[np.ndarray, np.ndarray]:
    """The trace's samples covering [t0, t0 + dur] (one outside each edge), relative to t0."""
    lo = max(int(np.searchsorted(sim.t, t0, side="right")) - 1, 0)
    hi = min(int(np.searchsorted(sim.t, t0 + dur, side="left")) + 1, sim.t.size)
    return sim.t[lo:hi] - t0, sim.p[lo:hi].reshape(-1, 1)


def flat_trace(watts: float = 692.0, seconds: float = 60.0, step: float = 0.02, noise: float = 0.0,
               seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0.0, seconds, step)
    p = watts + np.random.default_rng(seed).normal(0.0, noise, t.size) if noise else np.full(t.size, watts)
    return t, p
