"""Gates on a finished item: energy budgets and the comparison with a saved run.

A breach fails that test (not the session) with one plain sentence per breach and its own
report status (``B`` / ``OVER BUDGET`` in verbose output).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llenergy.plugin.gates import budgets, compare
from pytest_llenergy.results.budgets import Verdict

GATE_FAILED = "lem_gate_failed"


def evaluate(item: pytest.Item, figures: dict[str, Any] | None) -> Verdict | None:
    """Budgets and comparison together; None when the item has neither."""
    verdicts = [v for v in (budgets.evaluate(item, figures), compare.evaluate(item, figures)) if v is not None]
    if not verdicts:
        return None
    merged = Verdict()
    for verdict in verdicts:
        merged.breaches += verdict.breaches
        merged.checks += verdict.checks
    return merged


def fail_report(report: pytest.TestReport, verdict: Verdict) -> None:
    """Turn a passed call report into a gate failure."""
    report.outcome = "failed"
    report.longrepr = "Energy gate failed:\n" + "\n".join(f"  {b}" for b in verdict.breaches)
    report.user_properties.append((GATE_FAILED, verdict.breaches))


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    if report.when == "call" and report.failed and any(k == GATE_FAILED for k, _ in report.user_properties):
        return "failed", "B", "OVER BUDGET"
    return None
