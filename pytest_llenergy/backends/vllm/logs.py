"""Warnings a vLLM session collects while the engine starts and runs (vLLM/transformers logs, Python warnings)."""

from __future__ import annotations

import sys
from typing import Any

from pytest_llenergy.backends.capture import WarningCapture


class LogCapture(WarningCapture):
    """Collect warnings logged by vLLM/transformers and Python warnings, as unique one-line strings.

    vLLM (re)configures its logger with ``dictConfig`` while the engine starts, which removes every
    handler on ``vllm``; while capturing, ``vllm.logger.dictConfig`` is wrapped so the capture
    handler is attached again after each reconfiguration (restored on exit).
    """

    LOGGERS = ("vllm", "transformers")

    def __init__(self) -> None:
        super().__init__(first_line=True)
        self._patched: tuple[Any, Any] | None = None

    def __enter__(self) -> LogCapture:
        super().__enter__()
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
        super().__exit__(*exc)
