"""Warnings an engine emits while it loads and runs (Python warnings and its loggers), as short strings."""

from __future__ import annotations

import logging
import warnings
from typing import Any


class WarningCapture:
    """Collect Python warnings and the named loggers' warnings, unique and in order.

    ``first_line``: keep only each message's first line (engines that log tracebacks).
    """

    LOGGERS: tuple[str, ...] = ()

    def __init__(self, first_line: bool = False) -> None:
        self.messages: list[str] = []
        self.first_line = first_line
        self._handler = _Sink(self.messages, first_line)
        self._catcher: Any = None
        self._records: list[warnings.WarningMessage] = []

    def _attach(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            if self._handler not in logger.handlers:
                logger.addHandler(self._handler)

    def __enter__(self) -> WarningCapture:
        self._catcher = warnings.catch_warnings(record=True)
        self._records = self._catcher.__enter__()
        warnings.simplefilter("always")
        self._attach()
        return self

    def __exit__(self, *exc: Any) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self._handler)
        self._catcher.__exit__(*exc)
        for record in self._records:
            text = str(record.message)
            self.messages.append(f"{record.category.__name__}: {_first(text) if self.first_line else text}")
        self.messages[:] = list(dict.fromkeys(self.messages))


def _first(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


class _Sink(logging.Handler):
    def __init__(self, sink: list[str], first_line: bool) -> None:
        super().__init__(level=logging.WARNING)
        self.sink, self.first_line = sink, first_line

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception as exc:  # noqa: BLE001 - a broken record must not break a measurement: say so instead
            text = f"unreadable log record ({type(exc).__name__}: {exc})"
        self.sink.append(f"{record.name.split('.')[0]}: {_first(text) if self.first_line else text}")
