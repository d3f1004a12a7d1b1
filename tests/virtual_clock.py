"""A virtual clock for a whole pytest process, so that a replayed campaign's figures repeat exactly.

:func:`install` replaces ``time.monotonic``, ``time.perf_counter``, ``time.time`` (and their ``_ns``
forms) by one virtual clock that stands still, and ``time.sleep`` by a function that advances it
(instantly) when the main thread sleeps in this project's package or in a file under ``here`` (the
campaign's tests and conftest); every other sleep (a library's, a background thread's) is a real
one and leaves the clock alone. Install it before anything else is imported (``from time import
perf_counter`` and ``clock=time.monotonic`` defaults bind the function at import), in a process of
its own: the golden test starts one (``tests/test_replay_golden.py``).

With the replay energy source on this clock every window edge, duration, sample and baseline is a
function of the sleeps the code asked for, not of how fast this machine ran it. The sampler thread
still wakes on real time; in driver mode (the replay source's sample buffer) what it drains in
between is a subset of what the window's last drain gets, as long as no window is longer than the
buffer's history (2.5 s).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import SupportsIndex

#: Where the virtual monotonic and perf_counter clocks start (seconds).
START_S = 1000.0
PACKAGE = "pytest_llenergy"


class VirtualClock:
    """One clock for monotonic, perf_counter and time (the wall clock keeps its real start)."""

    def __init__(self, here: Path, start_s: float = START_S) -> None:
        self.here = str(here.resolve())
        self.start_s = self.now_s = start_s
        self.wall0 = time.time()
        self.real_sleep = time.sleep
        self.main = threading.main_thread()

    def monotonic(self) -> float:
        return self.now_s

    def monotonic_ns(self) -> int:
        return round(self.now_s * 1e9)

    def time(self) -> float:
        return self.wall0 + (self.now_s - self.start_s)

    def time_ns(self) -> int:
        return round(self.time() * 1e9)

    def sleep(self, seconds: float, caller: FrameType) -> None:
        """Advance the clock by ``seconds`` (a main-thread sleep in ``caller``, our code), else sleep."""
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        if threading.current_thread() is self.main and self._virtual(caller):
            self.now_s += seconds
            self.real_sleep(0)  # let other threads run, as a real sleep would
        else:
            self.real_sleep(seconds)

    def _virtual(self, frame: FrameType) -> bool:
        name = str(frame.f_globals.get("__name__", ""))
        path = os.path.realpath(frame.f_code.co_filename)
        return name == PACKAGE or name.startswith(PACKAGE + ".") or path.startswith(self.here + os.sep)


def install(here: Path) -> VirtualClock:
    """Put a :class:`VirtualClock` in place of the ``time`` module's clocks and sleep.

    The replacements are this module's functions (plugins that name a timer by ``module.attr``,
    e.g. pytest-benchmark's default) find them: import this module by its name ``virtual_clock``.
    """
    global CLOCK
    CLOCK = VirtualClock(here)
    time.monotonic = time.perf_counter = monotonic
    time.monotonic_ns = time.perf_counter_ns = monotonic_ns
    time.time, time.time_ns, time.sleep = wall, wall_ns, sleep
    return CLOCK


CLOCK: VirtualClock | None = None


def _clock() -> VirtualClock:
    assert CLOCK is not None, "virtual_clock.install() first"
    return CLOCK


def monotonic() -> float:
    return _clock().monotonic()


def monotonic_ns() -> int:
    return _clock().monotonic_ns()


def wall() -> float:
    return _clock().time()


def wall_ns() -> int:
    return _clock().time_ns()


def sleep(seconds: float | SupportsIndex, /) -> None:
    _clock().sleep(float(seconds), sys._getframe(1))
