"""Warnings a vLLM session collects while the engine starts and runs (vLLM/transformers logs, Python warnings)."""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any


class LogCapture:
    """Collect warnings logged by vLLM/transformers and Python warnings, as unique one-line strings.

    vLLM (re)configures its logger with ``dictConfig`` while the engine starts, which removes every
    handler on ``vllm``; while capturing, ``vllm.logger.dictConfig`` is wrapped so the capture
    handler is attached again after each reconfiguration (restored on exit).
    """

    LOGGERS = ("vllm", "transformers")

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._handler = _Sink(self.messages)
        self._catcher: Any = None
        self._records: list[Any] = []
        self._patched: tuple[Any, Any] | None = None

    def _attach(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            if self._handler not in logger.handlers:
                logger.addHandler(self._handler)

    def __enter__(self) -> LogCapture:
        self._catcher = warnings.catch_warnings(record=True)
        self._records = self._catcher.__enter__()
        warnings.simplefilter("always")
        self._attach()
        module = sys.modules.get("vllm.logger")
        original = getattr(module, "dictConfig", None)
        if module is not None and callable(original):
            def reattaching(*args: Any, **kwargs: Any) -> Any:
                result = original(*args, **kwargs)
                self._attach()
                return result

            patched: Any = module
            patched.dictConfig = reattaching
            self._patched = (module, original)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._patched is not None:
            module, original = self._patched
            module.dictConfig = original
            self._patched = None
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self._handler)
        self._catcher.__exit__(*exc)
        self.messages.extend(f"{r.category.__name__}: {str(r.message).splitlines()[0]}" for r in self._records)
        self.messages[:] = list(dict.fromkeys(self.messages))


class _Sink(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().strip().splitlines()
            self.sink.append(f"{record.name.split('.')[0]}: {text[0] if text else ''}")
        except Exception:  # noqa: BLE001 - a broken record must not break a measurement
            pass
