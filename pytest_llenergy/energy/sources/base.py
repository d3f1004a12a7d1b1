"""The energy-source protocol shared by NVML, RAPL, estimate and replay sources.

A source reports, per device, a cumulative energy counter (joules, when the hardware has one),
instantaneous power (watts) and optional auxiliary signals. Every time a source reports lives on
its own clock (``source.clock()``, seconds): ``time.monotonic`` for hardware, a virtual clock for
replayed traces. The meter and the sampler time windows with that clock, so a time-compressed
replay (``speed`` > 1) still yields consistent joules and seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

#: ``drain_power_samples`` result: ``(t, p)`` with ``t`` shape (k,) on the source clock and
#: ``p`` shape (k, n_devices) in watts.
PowerSamples = tuple[np.ndarray, np.ndarray]


class SourceError(RuntimeError):
    """A source failed (not found, unreadable, or a device lost mid-window)."""


@dataclass(frozen=True)
class DeviceInfo:
    """One measured device: ``label`` is the stable name used in results (``gpu0``, ...)."""

    label: str
    name: str | None = None
    uuid: str | None = None
    index: int | None = None

    @property
    def key(self) -> str:
        """The identity used for caching (uuid when known, else label)."""
        return self.uuid or self.label


@runtime_checkable
class EnergySource(Protocol):
    """What the sampler, meter, baseline and thermal code need from a source."""

    kind: str
    estimated: bool
    simulated: bool
    has_counter: bool
    counter_period_s: float | None
    speed: float

    def clock(self) -> float:
        """Seconds on this source's clock (monotonic for hardware sources)."""
        ...

    def devices(self) -> list[DeviceInfo]:
        """The devices measured, in the column order of every array returned."""
        ...

    def read_counters(self) -> np.ndarray | None:
        """Cumulative energy in joules per device, or None when there is no counter."""
        ...

    def read_power(self) -> np.ndarray:
        """Instantaneous power in watts per device."""
        ...

    def read_aux(self) -> dict[str, np.ndarray]:
        """Extra per-device signals the source supports (may be empty)."""
        ...

    def read_throttle(self) -> dict[str, np.ndarray] | None:
        """Cumulative throttled nanoseconds per cause per device (NVML only)."""
        ...

    def close(self) -> None:
        """Release the source."""
        ...


class BaseSource:
    """Defaults for the optional parts of :class:`EnergySource`."""

    kind: str = "base"
    estimated: bool = False
    simulated: bool = False
    has_counter: bool = False
    #: Seconds between counter updates (None: exact, e.g. a replayed integral).
    counter_period_s: float | None = None
    #: Source seconds per real second (only a time-compressed replay differs from 1).
    speed: float = 1.0
    #: Power is the counter difference since the previous read (RAPL, estimate): the sampler
    #: calls :meth:`restart_rate` at the window start and takes its first sample one period in.
    rate_from_counter: bool = False

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    def clock(self) -> float:
        return self._clock()

    def devices(self) -> list[DeviceInfo]:  # pragma: no cover - always overridden
        raise NotImplementedError

    def read_counters(self) -> np.ndarray | None:
        return None

    def read_aux(self) -> dict[str, np.ndarray]:
        return {}

    def read_throttle(self) -> dict[str, np.ndarray] | None:
        return None

    def drain_power_samples(self, since: float | None = None) -> PowerSamples | None:
        """Buffered samples newer than ``since`` (source clock; None: all the buffer holds).

        None means the source keeps no sample buffer: poll :meth:`read_power` instead.
        Stateless, so several samplers can drain one source.
        """
        return None

    def restart_rate(self) -> None:
        """Start the next counter-derived power interval now (no-op for other sources)."""
        return None

    def overhead_j(self, sampler_cpu_s: float) -> np.ndarray | None:
        """Joules per device the counter charged for the sampler's own work (None: none, a GPU's)."""
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> BaseSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RateFromCounter:
    """Power as the energy-counter difference between successive calls (RAPL, estimate).

    Thread-safe. A call less than ``min_dt`` after the previous one returns the previous rate
    (a coarse counter, e.g. 10 ms CPU-time ticks, gives spikes over tiny intervals).
    """

    def __init__(self, read: Callable[[], np.ndarray], clock: Callable[[], float],
                 min_dt: float = 0.02) -> None:
        import threading

        self._read, self._clock, self._min_dt = read, clock, min_dt
        self._lock = threading.Lock()
        self._last_e = read()
        self._last_t = clock()
        self._last_p = np.zeros_like(self._last_e, dtype=float)
        self._fresh = False

    def __call__(self) -> np.ndarray:
        with self._lock:
            t = self._clock()
            dt = t - self._last_t
            if dt >= self._min_dt or (self._fresh and dt > 0):
                e = self._read()
                self._last_p = (e - self._last_e) / dt
                self._last_e, self._last_t, self._fresh = e, t, False
            return self._last_p.copy()

    def restart(self) -> None:
        """Begin a new interval now; the next rate covers only the time from here (however short:
        a window never borrows the rate of the interval before it)."""
        with self._lock:
            self._last_e, self._last_t, self._fresh = self._read(), self._clock(), True
