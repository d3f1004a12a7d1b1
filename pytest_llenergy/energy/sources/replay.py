"""Play back a recorded power trace as if it were a GPU (``simulated=True``).

The CSV has a ``t_s`` column and either ``power_w`` (one device, replicated to ``devices``
devices when asked) or ``power_w_0, power_w_1, ...`` (one column per device). Power between
samples is linearly interpolated; the virtual energy counter is the exact integral of that
piecewise-linear curve, so the counter-side joules of any window are known exactly. The trace
loops (period = last - first timestamp) unless ``loop=False``, in which case the last value holds.

Time: the source clock is the trace time ``start_s + (clock() - clock_at_start) x speed``; a
``speed`` above 1 compresses a replay for tests, an injected ``clock`` drives it by hand.
:meth:`ReplaySource.drain_power_samples` hands out the trace's own samples, emulating the
driver sample buffer (``history_s`` of history).

``counter_period_s`` makes the virtual counter move in steps like NVML's (held at its value of the
latest update ``counter_phase_s + k x period``), for testing the edge correction.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pytest_llenergy.energy.sources.base import BaseSource, DeviceInfo, PowerSamples

DEFAULT_TRACE = Path(__file__).resolve().parent.parent / "traces" / "h200_trace.csv"


def load_trace(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(t, p)`` from a trace CSV: ``t`` shape (n,), ``p`` shape (n, columns)."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        header = [h.strip() for h in fh.readline().split(",")]
    if "t_s" not in header:
        raise ValueError(f"{path}: no t_s column in header {header}")
    cols = ["power_w"] if "power_w" in header else sorted(
        (h for h in header if h.startswith("power_w_")), key=lambda h: int(h.rsplit("_", 1)[1]))
    if not cols:
        raise ValueError(f"{path}: no power_w or power_w_<i> column in header {header}")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    t = data[:, header.index("t_s")]
    p = data[:, [header.index(c) for c in cols]]
    if t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError(f"{path}: need at least 2 samples with strictly increasing t_s")
    return t, p


class ReplaySource(BaseSource):
    """A power trace replayed in (optionally compressed) real time, with an exact counter."""

    kind = "replay"
    simulated = True
    has_counter = True
    counter_period_s = None

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        loop: bool = True,
        devices: int | None = None,
        scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        start_s: float | None = None,
        speed: float = 1.0,
        history_s: float = 2.5,
        counter_period_s: float | None = None,
        counter_phase_s: float = 0.0,
    ) -> None:
        super().__init__(clock)
        if counter_period_s is not None and not counter_period_s > 0:
            raise ValueError(f"counter_period_s must be > 0 (got {counter_period_s})")
        self.counter_period_s, self.counter_phase_s = counter_period_s, float(counter_phase_s)
        if not scale > 0 or not speed > 0:
            raise ValueError(f"scale and speed must be > 0 (got {scale}, {speed})")
        self.path = Path(path) if path is not None else DEFAULT_TRACE
        t, p = load_trace(self.path)
        if devices is not None:
            if p.shape[1] == 1:
                p = np.repeat(p, devices, axis=1)
            elif devices <= p.shape[1]:
                p = p[:, :devices]
            else:
                raise ValueError(f"{self.path}: {p.shape[1]} device columns, {devices} asked")
        self._t, self._p = t, p * scale
        seg = 0.5 * (self._p[1:] + self._p[:-1]) * np.diff(t)[:, None]
        self._e = np.vstack([np.zeros((1, p.shape[1])), np.cumsum(seg, axis=0)])
        self.loop, self.scale, self.speed, self.history_s = loop, scale, speed, history_s
        self.period_s = float(t[-1] - t[0])
        self._start_v = float(t[0] if start_s is None else start_s)
        self._c0 = clock()
        self.meta = self._load_meta()
        digest = hashlib.sha1(f"{self.path.resolve()}|{scale}".encode()).hexdigest()[:12]
        label = self.meta.get("gpu", "trace")
        self._devices = [DeviceInfo(f"replay{i}", f"replay of {label} ({self.path.name})",
                                    f"replay-{digest}-{i}", i) for i in range(p.shape[1])]

    def _load_meta(self) -> dict:
        meta = self.path.with_name(self.path.stem + "_meta.json")
        try:
            return json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    # -- time ---------------------------------------------------------------------------------
    def clock(self) -> float:
        """Trace seconds now (unrolled: keeps growing across loops)."""
        return self.trace_time(self._clock())

    def trace_time(self, reading: float) -> float:
        """Trace seconds at ``reading`` of the underlying clock (e.g. a window's monotonic host edge)."""
        return self._start_v + (reading - self._c0) * self.speed

    def _position(self, v: float) -> tuple[int, float]:
        """(completed loops, position inside the trace) for unrolled trace time ``v``."""
        t0, t1 = float(self._t[0]), float(self._t[-1])
        if not self.loop:
            return 0, min(max(v, t0), t1)
        k = math.floor((v - t0) / self.period_s)
        return k, t0 + (v - t0) - k * self.period_s

    def _at(self, r: float) -> tuple[np.ndarray, np.ndarray]:
        """(power, cumulative energy from the trace start) at in-trace position ``r``."""
        t = self._t
        i = int(np.clip(np.searchsorted(t, r, side="right") - 1, 0, t.size - 2))
        frac = (r - t[i]) / (t[i + 1] - t[i])
        p_r = self._p[i] + (self._p[i + 1] - self._p[i]) * frac
        return p_r, self._e[i] + (r - t[i]) * 0.5 * (self._p[i] + p_r)

    def power_at(self, v: float) -> np.ndarray:
        """Power per device at unrolled trace time ``v``."""
        return self._at(self._position(v)[1])[0]

    def energy_at(self, v: float) -> np.ndarray:
        """Counter value (J) at unrolled trace time ``v``: the exact integral since ``t[0]``."""
        k, r = self._position(v)
        p_r, e_r = self._at(r)
        if not self.loop:
            outside = v - r  # time held before the start or after the end
            return e_r + outside * p_r
        return e_r + k * self._e[-1]

    def energy_between(self, v0: float, v1: float) -> np.ndarray:
        """Exact joules per device between two trace times."""
        return self.energy_at(v1) - self.energy_at(v0)

    # -- source API ---------------------------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        return list(self._devices)

    def read_counters(self) -> np.ndarray:
        v = self.clock()
        if self.counter_period_s:  # stepped like NVML's: the value of the latest update
            k = math.floor((v - self.counter_phase_s) / self.counter_period_s)
            v = self.counter_phase_s + k * self.counter_period_s
        return self.energy_at(v)

    def read_power(self) -> np.ndarray:
        return self.power_at(self.clock())

    def drain_power_samples(self, since: float | None = None) -> PowerSamples | None:
        """The trace's own samples newer than ``since`` (at most ``history_s`` back)."""
        now = self.clock()
        start = now - self.history_s if since is None else max(since, now - self.history_s)
        return self._samples_between(start, now)

    def _samples_between(self, a: float, b: float) -> PowerSamples:
        t, p = self._t, self._p
        if not self.loop:
            m = (t > a) & (t <= b)
            return t[m].copy(), p[m].copy()
        t0 = float(t[0])
        ts, ps = [], []
        for k in range(math.floor((a - t0) / self.period_s), math.floor((b - t0) / self.period_s) + 1):
            tk = t[:-1] + k * self.period_s  # the last sample is the next loop's first
            m = (tk > a) & (tk <= b)
            ts.append(tk[m])
            ps.append(p[:-1][m])
        return np.concatenate(ts), np.vstack(ps)
