"""A light background power sampler: one thread, numpy buffers, no work beyond the reads.

Two modes. *driver*: the source keeps its own sample buffer (NVML ``nvmlDeviceGetSamples``,
~50 Hz, ~2.4 s history; the replay source emulates it); the thread drains it every
``drain_interval_s`` and reads auxiliary signals at ``aux_hz``. *poll*: the thread reads power at
``hz`` (1..100) and auxiliary signals at ``min(hz, aux_hz)``. Timestamps are on the source clock,
relative to the window start ``t0``. A read failure ends sampling, keeping the samples so far
and the error text. Intervals above 3x the nominal period are counted as gaps.

Counter probes (sources whose energy counter moves in steps of ``counter_period_s`` >= 10 ms, i.e.
NVML): right after the start the thread reads the counter a few ms apart until it moves, and
every ``probe_every_s`` it does so again starting just before the predicted next step (a handful of
~4 ms reads). The reads (``Timeseries.counter_reads``) bracket the counter's update instants for
the edge correction in ``energy/edges.py``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_llenergy.config.base import default_of
from pytest_llenergy.config.measurement import MeasurementConfig
from pytest_llenergy.energy.sources.base import EnergySource, SourceError

if TYPE_CHECKING:
    import pandas as pd

MIN_HZ, MAX_HZ = 1.0, 100.0
#: The sampling rate when none is given: ``measurement.sample_hz``'s default.
SAMPLE_HZ: float = default_of(MeasurementConfig, "sample_hz")
GAP_FACTOR = 3.0
#: Driver samples closer than this to the last one kept are repeats (they are ~20 ms apart).
DEDUP_S = 0.002
#: Counter probes: pause between reads, re-probe interval, and how long one probe may run (periods).
PROBE_SPACING_S = 0.001
PROBE_EVERY_S = 1.0
PROBE_MAX_PERIODS = 1.5
#: How long a short window's end waits for the driver's next sample (three ~20 ms intervals).
BRACKET_WAIT_S = 0.06
#: Counters updating faster than this (RAPL: ~1 ms) need no edge correction, hence no probes.
MIN_PROBE_PERIOD_S = 0.01


class _Growable:
    """A preallocated (n, cols) float buffer with a time vector; doubles when full."""

    __slots__ = ("t", "v", "n")

    def __init__(self, cols: int, capacity: int = 1024) -> None:
        self.t = np.empty(capacity)
        self.v = np.empty((capacity, cols))
        self.n = 0

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need > self.t.size:
            size = max(need, 2 * self.t.size)
            t, v = np.empty(size), np.empty((size, self.v.shape[1]))
            t[: self.n], v[: self.n] = self.t[: self.n], self.v[: self.n]
            self.t, self.v = t, v

    def append(self, t: float, row: np.ndarray) -> None:
        if self.n == self.t.size:
            self._reserve(1)
        self.t[self.n] = t
        self.v[self.n] = row
        self.n += 1

    def extend(self, t: np.ndarray, rows: np.ndarray) -> None:
        k = t.size
        if k:
            self._reserve(k)
            self.t[self.n : self.n + k] = t
            self.v[self.n : self.n + k] = rows
            self.n += k

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.t[: self.n].copy(), self.v[: self.n].copy()


@dataclass(frozen=True)
class Timeseries:
    """Samples of one window: ``power_w`` and every ``aux`` array have shape (n, devices)."""

    t_s: np.ndarray
    power_w: np.ndarray
    labels: tuple[str, ...]
    duration_s: float
    mode: str = "poll"
    nominal_hz: float = 0.0
    aux: dict[str, np.ndarray] = field(default_factory=dict)
    gaps: int = 0
    error: str | None = None
    thread_cpu_s: float = 0.0
    #: ``(t_lo, t_hi, values)`` counter reads taken by the probes (window clock).
    counter_reads: tuple[tuple[float, float, np.ndarray], ...] = ()

    @property
    def n(self) -> int:
        """Samples inside the window (edge samples just outside are kept but not counted)."""
        return int(np.count_nonzero((self.t_s >= 0) & (self.t_s <= self.duration_s)))

    def to_frame(self, window: str | None = None) -> pd.DataFrame:
        """Long format: one row per (sample, device); columns t_s, device, power_w, aux..."""
        import pandas as pd

        n, d = self.power_w.shape
        data: dict[str, Any] = {}
        if window is not None:
            data["window"] = np.full(n * d, window, dtype=object)
        data["t_s"] = np.repeat(self.t_s, d)
        data["device"] = np.tile(np.asarray(self.labels, dtype=object), n)
        data["power_w"] = self.power_w.ravel()
        for name, values in self.aux.items():
            data[name] = values.ravel()
        return pd.DataFrame(data)


class Sampler:
    """Samples ``source`` in a background thread between :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        source: EnergySource,
        hz: float = SAMPLE_HZ,
        *,
        use_driver_buffer: bool = True,
        aux_hz: float = 10.0,
        drain_interval_s: float = 0.5,
        probe_counter: bool = True,
    ) -> None:
        if not MIN_HZ <= float(hz) <= MAX_HZ:
            raise ValueError(f"sample rate must be within {MIN_HZ:g}..{MAX_HZ:g} Hz, got {hz}")
        if not aux_hz > 0 or not drain_interval_s > 0:
            raise ValueError("aux_hz and drain_interval_s must be > 0")
        self.source, self.hz = source, float(hz)
        self.aux_hz, self.drain_interval_s = min(float(aux_hz), self.hz), float(drain_interval_s)
        self._drain = getattr(source, "drain_power_samples", None) if use_driver_buffer else None
        self._labels = tuple(d.label for d in source.devices())
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.mode = "poll"
        period = getattr(source, "counter_period_s", None)
        self._probe_period = (float(period) if probe_counter and getattr(source, "has_counter", False)
                              and period and period >= MIN_PROBE_PERIOD_S else None)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, t0: float | None = None) -> None:
        """Start sampling; ``t0`` (source clock) is the window start, default now."""
        if self._thread is not None:
            raise RuntimeError("sampler already running")
        self._t0 = self.source.clock() if t0 is None else float(t0)
        cols = len(self._labels)
        self._power = _Growable(cols)
        self._aux: dict[str, _Growable] = {}
        self._error: str | None = None
        self._cpu_s = 0.0
        self._last_t: float | None = None
        self._reads: list[tuple[float, float, np.ndarray]] = []
        self._last_step: float | None = None
        self._next_probe = 0.0
        self._stop.clear()
        self.mode = "poll"
        try:
            if self._drain is not None and self._drain_once():
                self.mode = "driver"
            elif getattr(self.source, "rate_from_counter", False):
                self.source.restart_rate()  # type: ignore[attr-defined]
        except Exception as exc:  # a failing source must not break the workload
            self._error = _describe(exc)
        self._thread = threading.Thread(target=self._run, name="llenergy-sampler", daemon=True)
        self._thread.start()

    def stop(self, t1: float | None = None, *, bracket: bool = False) -> Timeseries:
        """Stop the thread, take a last edge sample, and return the window's samples.

        ``bracket``: in driver mode, wait (up to ``BRACKET_WAIT_S`` source seconds) for the driver's
        first sample at or after ``t1``, so a short window lies between two samples.
        """
        if self._thread is None:
            raise RuntimeError("sampler not running")
        self._stop.set()
        self._thread.join()
        self._thread = None
        t1 = self.source.clock() if t1 is None else float(t1)
        if self._error is None:
            try:
                if self.mode == "driver":
                    self._drain_once()
                    if bracket:
                        self._await_sample_after(t1 - self._t0)
                else:
                    self._poll(with_aux=False)
            except Exception as exc:
                self._error = _describe(exc)
        return self._timeseries(t1 - self._t0)

    def _await_sample_after(self, t: float) -> None:
        speed = getattr(self.source, "speed", 1.0) or 1.0
        deadline = time.monotonic() + BRACKET_WAIT_S / speed
        while (self._power.n == 0 or self._power.t[self._power.n - 1] < t) and time.monotonic() < deadline:
            time.sleep(PROBE_SPACING_S * 2)
            self._drain_once()

    # -- thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        cpu0 = time.thread_time()
        speed = getattr(self.source, "speed", 1.0) or 1.0
        rate = self.hz if self.mode == "poll" else self.aux_hz
        period = 1.0 / rate / speed
        aux_every = max(1, round(self.hz / self.aux_hz)) if self.mode == "poll" else 1
        drain_every = max(1, round(self.drain_interval_s * rate))  # in source seconds
        next_due, i = time.monotonic(), 0
        if self.mode == "poll" and getattr(self.source, "rate_from_counter", False):
            # a counter-derived rate needs one interval: the first sample comes a period in
            next_due += period
            if self._stop.wait(period):
                return
        try:
            if self._probe_period is not None:
                self._probe()
            while True:
                if self._probe_period is not None and self._probe_due():
                    self._probe()
                if self.mode == "poll":
                    self._poll(with_aux=i % aux_every == 0)
                else:
                    self._read_aux(self.source.clock() - self._t0)
                    if i and i % drain_every == 0:
                        self._drain_once()
                i += 1
                next_due += period
                delay = next_due - time.monotonic()
                if delay < -period:  # fell behind (GIL, suspend): resync, never burst
                    next_due, delay = time.monotonic(), 0.0
                if self._stop.wait(max(delay, 0.0)):
                    break
        except Exception as exc:
            self._error = _describe(exc)
        finally:
            self._cpu_s = time.thread_time() - cpu0

    # -- counter probes -------------------------------------------------------------------------
    def _read_counter(self) -> np.ndarray | None:
        lo = self.source.clock()
        values = self.source.read_counters()
        hi = self.source.clock()
        if values is not None:
            self._reads.append((lo - self._t0, hi - self._t0, np.asarray(values, dtype=float)))
        return values

    def _probe_due(self) -> bool:
        if time.monotonic() < self._next_probe:
            return False
        return self._last_step is None or self.source.clock() - self._t0 - self._last_step >= PROBE_EVERY_S

    def _probe(self) -> None:
        """Read the counter a few ms apart until every device's value moved (bounded in time)."""
        period = self._probe_period or 0.1
        speed = getattr(self.source, "speed", 1.0) or 1.0
        if self._last_step is not None:  # start a few reads before the predicted next step
            lead = 3.0 * (self._read_cost() + PROBE_SPACING_S)
            now = self.source.clock() - self._t0
            nxt = self._last_step + math.ceil((now + lead - self._last_step) / period) * period
            if self._stop.wait(max(nxt - lead - now, 0.0) / speed):
                return
        first = self._read_counter()
        if first is None:
            return
        deadline = time.monotonic() + PROBE_MAX_PERIODS * period / speed
        while time.monotonic() < deadline and not self._stop.wait(PROBE_SPACING_S):
            before = self.source.clock() - self._t0
            values = self._read_counter()
            if values is None or np.all(values != first):
                self._last_step = before
                return
        self._next_probe = time.monotonic() + PROBE_EVERY_S / speed  # no step seen: try again later

    def _read_cost(self) -> float:
        """Median duration of the counter reads so far (source seconds)."""
        if not self._reads:
            return 0.004
        return float(np.median([hi - lo for lo, hi, _ in self._reads[-20:]]))

    def _poll(self, with_aux: bool) -> None:
        t = self.source.clock() - self._t0
        self._power.append(t, self.source.read_power())
        if with_aux:
            self._read_aux(t)

    def _read_aux(self, t: float) -> None:
        for name, values in self.source.read_aux().items():
            buf = self._aux.get(name)
            if buf is None:
                buf = self._aux[name] = _Growable(len(self._labels), 256)
            buf.append(t, values)

    def _drain_once(self) -> bool:
        got = self._drain(self._last_t) if self._drain is not None else None
        if got is None:
            return False
        t, p = np.asarray(got[0], dtype=float), got[1]
        if self._last_t is not None:  # guard against clock-mapping jitter re-sending a sample
            keep = t > self._last_t + DEDUP_S
            t, p = t[keep], p[keep]
        if t.size:
            self._last_t = float(t[-1])
            self._power.extend(t - self._t0, p)
        return True

    # -- result -------------------------------------------------------------------------------
    def _timeseries(self, duration: float) -> Timeseries:
        t, p = self._power.arrays()
        if t.size:
            order = np.argsort(t, kind="stable")
            t, p = t[order], p[order]
            lo = max(int(np.searchsorted(t, 0.0, side="right")) - 1, 0)
            hi = max(min(int(np.searchsorted(t, duration, side="left")) + 1, t.size), lo + 1)
            t, p = t[lo:hi], p[lo:hi]
        aux = {}
        for name, buf in self._aux.items():
            at, av = buf.arrays()
            idx = np.clip(np.searchsorted(at, t, side="right") - 1, 0, None)
            aux[name] = av[idx] if at.size else np.full_like(p, np.nan)
        nominal = self.hz
        if self.mode == "driver":
            step = float(np.median(np.diff(t))) if t.size > 2 else 0.0
            nominal = round(1.0 / step, 2) if step > 0 else 50.0
        gaps = int(np.count_nonzero(np.diff(t) > GAP_FACTOR / nominal)) if t.size > 1 else 0
        return Timeseries(t, p, self._labels, duration, self.mode, nominal, aux, gaps,
                          self._error, self._cpu_s, tuple(self._reads))


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
