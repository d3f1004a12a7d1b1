"""Signals while containers run: SIGINT, SIGTERM and SIGHUP end the session as Ctrl-C does, once.

pytest would just die on SIGTERM or SIGHUP (a closed terminal, a dropped ssh session), leaving the
run's containers behind; a second Ctrl-C while they are being stopped would abort the stopping with
a traceback. So the first of these signals raises ``KeyboardInterrupt`` (pytest ends the session and
its containers are stopped), and from then on, and while the containers are stopped at the end of
a session, a signal only prints one line and the stopping goes on.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

WATCHED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopOnSignals:
    """Installed (main thread only) while a session dispatches items; ``restore`` puts the old handlers back."""

    def __init__(self, notice: Callable[[], None]) -> None:
        self.notice = notice
        self.stopping = False
        self._noticed = False
        self._previous: dict[int, Any] = {}

    def install(self) -> bool:
        if self._previous or threading.current_thread() is not threading.main_thread():
            return False
        for signum in WATCHED:
            self._previous[signum] = signal.signal(signum, self._handle)
        return True

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            if not self._noticed:
                self._noticed = True
                try:
                    self.notice()
                except Exception:  # a closed terminal: nothing to tell, the stopping goes on
                    pass
            return
        self.stopping = True
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise KeyboardInterrupt(f"{signal.Signals(signum).name}")

    @contextmanager
    def holding(self) -> Iterator[None]:
        """While the containers are stopped: signals print one line and are otherwise held off."""
        stopping, self.stopping = self.stopping, True
        try:
            yield
        finally:
            self.stopping = stopping
