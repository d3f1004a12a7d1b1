"""``--lem-save`` / ``--lem-autosave`` / ``--lem-compare`` / ``--lem-compare-fail``.

The comparison fails the affected tests: each experiment's last cycle compares all its cycles
with the saved run's (one-sided Welch t against a third of the rule's threshold, ``MARGIN_FRACTION``,
at --lem-compare-alpha; results/compare.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llenergy.plugin.base import WINDOWS, campaign_item, get_run, session_of
from pytest_llenergy.plugin.base import storage_root as storage_root
from pytest_llenergy.plugin.gates.budgets import cycle_values
from pytest_llenergy.plugin.options import resolve
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.results.budgets import Verdict
from pytest_llenergy.results.compare import CompareRule, compare_metrics, parse_rules
from pytest_llenergy.results.windows import metric_values, window_key


def compare_alpha(config: pytest.Config) -> float:
    """--lem-compare-alpha (or the ini), checked by the option's parser: a probability in (0, 0.5)."""
    return float(resolve(config, "lem_compare_alpha"))


def load_comparison(session: LemSession) -> None:
    """Configure step: the compare rules and alpha, and the saved run ``--lem-compare`` names (a usage
    error when it cannot be found)."""
    config = session.config
    rules = parse_rules(resolve(config, "lem_compare_fail"))  # validated by the option's parser
    session.compare_rules = rules
    session.compare_alpha = compare_alpha(config)
    ref = resolve(config, "lem_compare")
    if ref is None:
        if rules:
            raise pytest.UsageError("llenergy: --lem-compare-fail needs --lem-compare [NAME|NUM] (which saved run?)")
        return
    from pytest_llenergy.results.saved import find_saved, load_saved

    try:
        path = find_saved(storage_root(config), None if ref in ("", "latest") else ref, None)
        session.saved = load_saved(path) | {"path": str(path)}
    except (FileNotFoundError, ValueError) as exc:
        raise pytest.UsageError(f"llenergy: --lem-compare: {exc}") from None


def evaluate(item: pytest.Item, figures: dict[str, Any] | None) -> Verdict | None:
    """Compare this experiment (at its last cycle) or this plain test's windows with the saved run;
    None when not comparing."""
    session = session_of(item.config)
    saved, rules = session.saved, session.compare_rules
    if saved is None or not rules:
        return None
    citem, run = campaign_item(item), get_run(item.config)
    if citem is None:
        return _evaluate_windows(item, saved, rules)
    if run is None or citem.cycle != citem.cycles_total:
        return None
    previous = saved["experiments"].get(citem.experiment.id)
    if previous is None:
        return None
    return _judge(citem.experiment.id, previous, cycle_values(run, citem, figures or {}), saved, rules,
                  session.compare_alpha)


def _evaluate_windows(item: pytest.Item, saved: dict[str, Any], rules: list[CompareRule]) -> Verdict | None:
    """A plain test: each window name's repetitions against the saved run's windows of that key."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for window in item.stash.get(WINDOWS, []):
        by_name.setdefault(window.get("name") or "window", []).append(window)
    verdict: Verdict | None = None
    for name, windows in by_name.items():
        key = window_key(item.nodeid, name)
        previous = saved["experiments"].get(key)
        if previous is not None:
            one = _judge(key, previous, metric_values(windows), saved, rules, session_of(item.config).compare_alpha)
            verdict = verdict or Verdict()
            verdict.checks += one.checks
            verdict.breaches += one.breaches
    return verdict


def _judge(key: str, previous: dict[str, Any], values: dict[str, list[float]], saved: dict[str, Any],
           rules: list[CompareRule], alpha: float) -> Verdict:
    verdict = Verdict()
    for rule in rules:
        result = compare_metrics(key, previous["metrics"], values, rule, alpha)
        if result is None:
            continue
        verdict.checks.append({"compare": str(rule), "basis": result.basis or "as named",
                               "unavailable": result.unavailable,
                               "ratio": None if result.unavailable else result.ratio, "ci_low": result.ci_low,
                               "ci_high": result.ci_high, "p_value": result.p_value, "alpha": result.alpha,
                               "regression": result.regression, "saved": saved.get("path")})
        if result.regression:
            verdict.breaches.append(f"vs saved run {saved.get('number', '')} {saved.get('name')}: {result.message()}")
    return verdict
