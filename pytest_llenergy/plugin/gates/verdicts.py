"""Gates on a finished item: energy budgets and the comparison with a saved run.

A breach fails that test (not the session) with one plain sentence per breach and its own
report status: ``B`` / ``OVER BUDGET`` for a budget, ``R`` / ``REGRESSION`` for a regression
against a saved run (``OVER BUDGET`` when both).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llenergy.plugin.base import FAILED_GATE
from pytest_llenergy.plugin.gates import budgets, compare
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.results.budgets import Verdict

GATE_FAILED = "lem_gate_failed"
GATE_KIND = "lem_gate_kind"
OVER_BUDGET, REGRESSION = "budget", "regression"


def evaluate(item: pytest.Item, figures: dict[str, Any] | None) -> Verdict | None:
    """Budgets and comparison together; None when the item has neither.

    ``checks`` entries of a comparison carry ``compare``; the merged verdict's ``kind`` says
    which gate failed.
    """
    budget, comparison = budgets.evaluate(item, figures), compare.evaluate(item, figures)
    verdicts = [v for v in (budget, comparison) if v is not None]
    if not verdicts:
        return None
    merged = Verdict()
    for verdict in verdicts:
        merged.breaches += verdict.breaches
        merged.checks += verdict.checks
    item.stash[FAILED_GATE] = OVER_BUDGET if budget is not None and budget.failed else REGRESSION
    return merged


def fail_report(report: pytest.TestReport, verdict: Verdict, kind: str = OVER_BUDGET) -> None:
    """Turn a passed call report into a gate failure (``kind``: budget or regression)."""
    report.outcome = "failed"
    title = "Energy gate failed" if kind == OVER_BUDGET else "Regression against the saved run"
    first, more = verdict.breaches[0], len(verdict.breaches) - 1
    # pytest's short summary shows the first line: it names the first breach
    report.longrepr = f"{title}: {first}" + (f" (+{more} more)" if more else "") + "".join(
        f"\n  {b}" for b in verdict.breaches[1:])
    report.user_properties.append((GATE_FAILED, verdict.breaches))
    report.user_properties.append((GATE_KIND, kind))


def gate_kind(item: pytest.Item) -> str:
    return item.stash.get(FAILED_GATE, OVER_BUDGET)


class Gates:
    """The gates as a finished item's run asks for them (``LemSession.gates``: ``session.GatesView``)."""

    def judge(self, item: pytest.Item, figures: dict[str, Any] | None) -> Verdict | None:
        return evaluate(item, figures)

    def fail(self, report: pytest.TestReport, verdict: Verdict, item: pytest.Item) -> None:
        fail_report(report, verdict, gate_kind(item))


def install(session: LemSession) -> None:
    """Configure step: the gates a finished item is judged by (``measurement/runtest.py`` asks)."""
    session.gates = Gates()


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """Report status: ``B`` / ``OVER BUDGET`` and ``R`` / ``REGRESSION`` for gate failures."""
    if report.when == "call" and report.failed and any(k == GATE_FAILED for k, _ in report.user_properties):
        if any(k == GATE_KIND and v == REGRESSION for k, v in report.user_properties):
            return "failed", "R", "REGRESSION"
        return "failed", "B", "OVER BUDGET"
    return None
