"""Results: schema, store, statistics, exports, report and gates (no pytest).

The schema and store load eagerly; everything that needs pandas or scipy (``load``, ``summarize``,
``build_outputs`` ...) loads on first use, so importing this package stays cheap for the plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_llenergy.results.schema import SCHEMA_VERSION, ExperimentResult, result_key
from pytest_llenergy.results.store import RunDirectory, atomic_write_json

if TYPE_CHECKING:
    from pytest_llenergy.results.adaptive import AdaptiveDecision, decide
    from pytest_llenergy.results.frame import load
    from pytest_llenergy.results.metrics import metric_column
    from pytest_llenergy.results.report import build_outputs, build_report
    from pytest_llenergy.results.stats import DEFAULT_METRICS, BootstrapCI, bootstrap_ci, summarize
    from pytest_llenergy.results.summary import Summary
    from pytest_llenergy.results.terminal import format_terminal_table

_LAZY = {
    "AdaptiveDecision": "adaptive", "decide": "adaptive", "load": "frame", "metric_column": "metrics",
    "build_outputs": "report", "build_report": "report", "DEFAULT_METRICS": "stats", "BootstrapCI": "stats",
    "bootstrap_ci": "stats", "summarize": "stats", "Summary": "summary", "format_terminal_table": "terminal",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_METRICS",
    "SCHEMA_VERSION",
    "AdaptiveDecision",
    "BootstrapCI",
    "ExperimentResult",
    "RunDirectory",
    "Summary",
    "atomic_write_json",
    "bootstrap_ci",
    "build_outputs",
    "build_report",
    "decide",
    "format_terminal_table",
    "load",
    "metric_column",
    "result_key",
    "summarize",
]
