"""Checking energy budgets against measured figures: per cycle, or across cycles with the CI."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from pytest_llenergy.config.budgets import BUDGET_METRICS, Budget, format_quantity

__all__ = ["Budget", "Verdict", "check_interval", "check_point", "select_matches"]


@dataclass
class Verdict:
    """The outcome of checking one budget."""

    breaches: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.breaches)


def check_point(budget: Budget, figures: dict[str, Any], n: int = 1) -> Verdict:
    """Check single measured figures (one cycle) against the budget.

    ``figures["baseline_absent"]`` (optional) says why no baseline-adjusted figure exists here; a
    raw figure judged in its place is labelled with it.
    """
    verdict = Verdict()
    for metric, limit in budget.limits.items():
        column, adjusted = _available(budget, metric, lambda c: figures.get(c) is not None)
        value = figures.get(column)
        _judge(verdict, budget, metric, limit, value, value, adjusted, n, why_raw=figures.get("baseline_absent"),
               hint=_hint(metric, figures))
    return verdict


def _hint(metric: str, figures: dict[str, Any]) -> str | None:
    """What to do when a per-token figure is missing because no tokens were recorded."""
    if "token" in metric and figures.get("energy_j") is not None and not figures.get("output_tokens"):
        return "no output tokens recorded: call w.record(output_tokens=n) in or after the `with energy.measure(...) as w:` block"
    return None


def _available(budget: Budget, metric: str, has: Any) -> tuple[str, bool]:
    """The first of the budget's columns that was measured (the preferred one when none was)."""
    options = budget.columns(metric)
    return next(((c, a) for c, a in options if has(c)), options[0])


def check_interval(budget: Budget, stats: dict[str, tuple[float, float | None, int]]) -> Verdict:
    """Check across cycles: ``stats[column] = (mean, ci_low, n)``; fail only when ci_low > limit."""
    verdict = Verdict()
    for metric, limit in budget.limits.items():
        column, adjusted = _available(budget, metric, lambda c: stats.get(c, (None,))[0] is not None)
        mean, low, n = stats.get(column, (None, None, 0))
        decisive = low if low is not None else mean
        _judge(verdict, budget, metric, limit, mean, decisive, adjusted, n, ci_low=low)
    return verdict


def _judge(verdict: Verdict, budget: Budget, metric: str, limit: float, value: float | None,
           decisive: float | None, adjusted: bool, n: int, ci_low: float | None = None,
           why_raw: str | None = None, hint: str | None = None) -> None:
    kind, words = BUDGET_METRICS[metric][2], BUDGET_METRICS[metric][3]
    allowed = limit * (1 + budget.tolerance)
    entry = {"metric": metric, "limit": limit, "allowed": allowed, "value": value, "ci_low": ci_low,
             "adjusted": adjusted, "n": n}
    verdict.checks.append(entry)
    label = "adjusted" if adjusted else "raw"
    if budget.adjusted and not adjusted and BUDGET_METRICS[metric][1] is not None and value is not None:
        label = f"raw: no baseline-adjusted figure ({why_raw or 'no idle baseline from this source'})"
    entry["basis"] = label
    if value is None:
        verdict.breaches.append(f"{words}: not measured ({hint or label}), cannot check budget "
                                f"{format_quantity(limit, kind)}")
        return
    if decisive is not None and decisive > allowed:
        excess = (value / limit - 1) * 100
        tol = f", tolerance {budget.tolerance:.0%}" if budget.tolerance else ""
        ci = f", CI low {format_quantity(ci_low, kind)}" if ci_low is not None else ""
        verdict.breaches.append(
            f"{words} {format_quantity(value, kind)} > budget {format_quantity(limit, kind)} "
            f"({excess:+.1f} %, {label}, n={n}{ci}{tol})")


def select_matches(select: str | dict[str, Any], experiment_id: str, config: dict[str, Any]) -> bool:
    """A YAML budget's ``select``: an experiment-id glob, or field filters on dotted config paths."""
    if isinstance(select, str):
        return fnmatch.fnmatchcase(experiment_id, select)
    for path, wanted in select.items():
        node: Any = config
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and "name" in node and not isinstance(wanted, dict):
            node = node["name"]
        options = wanted if isinstance(wanted, list) else [wanted]
        if node not in options and not any(isinstance(o, str) and isinstance(node, str) and fnmatch.fnmatchcase(node, o) for o in options):
            return False
    return True
