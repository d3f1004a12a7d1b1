"""``--lem-save`` / ``--lem-autosave`` / ``--lem-compare`` / ``--lem-compare-fail``.

The comparison fails the affected tests: each experiment's last cycle compares all its cycles
with the saved run's (one-sided Welch t against half the rule's threshold, at --lem-compare-alpha;
results/compare.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.plugin.base import campaign_item
from pytest_llenergy.plugin.gates.budgets import cycle_values
from pytest_llenergy.plugin.measurement.recorder import WINDOWS
from pytest_llenergy.plugin.state import get_run
from pytest_llenergy.results.budgets import Verdict
from pytest_llenergy.results.compare import DEFAULT_ALPHA, CompareRule, compare_values, parse_rules
from pytest_llenergy.results.windows import metric_values, window_key

SAVED = pytest.StashKey[dict[str, Any]]()
RULES = pytest.StashKey[list[CompareRule]]()
ALPHA = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llenergy")
    group.addoption("--lem-save", dest="lem_save", metavar="NAME", default=None,
                    help="Save this run's summary under .lem-benchmarks/<machine id>/NNNN_<NAME>.json.")
    group.addoption("--lem-autosave", dest="lem_autosave", action="store_true", default=False,
                    help="Save every run (named after the campaign). Ini: lem_autosave.")
    parser.addini("lem_autosave", "Save every run.", type="bool", default=False)
    group.addoption("--lem-compare", dest="lem_compare", metavar="NAME|NUM", nargs="?", const="", default=None,
                    help="Compare with a saved run (latest when no value).")
    group.addoption("--lem-compare-fail", dest="lem_compare_fail", metavar="RULES", default=None,
                    help="Fail tests whose metric regresses: 'energy_per_output_token:5%% tokens_per_s:-10%%'. Ini: lem_compare_fail.")
    parser.addini("lem_compare_fail", "Default --lem-compare-fail rules.", default="")
    group.addoption("--lem-compare-alpha", dest="lem_compare_alpha", metavar="P", default=None,
                    help="False-alarm rate of --lem-compare-fail: fail when the one-sided p-value is below P "
                         f"(default {DEFAULT_ALPHA}). Ini: lem_compare_alpha.")
    parser.addini("lem_compare_alpha", "False-alarm rate of --lem-compare-fail.", default="")
    group.addoption("--lem-storage", dest="lem_storage", metavar="DIR", default=None,
                    help="Where saved runs live (default .lem-benchmarks in the rootdir). Ini: lem_storage.")
    parser.addini("lem_storage", "Where saved runs live.", default="")
    group.addoption("--lem-json", dest="lem_json", metavar="PATH", default=None,
                    help="Write a machine-readable report of the run, its statistics and verdicts.")


def storage_root(config: pytest.Config) -> Path:
    raw = config.getoption("lem_storage") or config.getini("lem_storage") or ".lem-benchmarks"
    path = Path(raw)
    return path if path.is_absolute() else config.rootpath / path


def compare_alpha(config: pytest.Config) -> float:
    """--lem-compare-alpha (or the ini), checked: a probability in (0, 0.5)."""
    raw = config.getoption("lem_compare_alpha") or config.getini("lem_compare_alpha") or DEFAULT_ALPHA
    try:
        alpha = float(raw)
    except ValueError:
        alpha = math.nan
    if not 0 < alpha < 0.5:
        raise pytest.UsageError(f"llenergy: --lem-compare-alpha: {raw!r} is not a probability between 0 and 0.5 "
                                "(e.g. 0.01: at most 1 % false alarms)")
    return alpha


def pytest_configure(config: pytest.Config) -> None:
    specs = config.getoption("lem_compare_fail") or config.getini("lem_compare_fail")
    try:
        rules = parse_rules(specs)
    except ValueError as exc:
        raise pytest.UsageError(f"llenergy: --lem-compare-fail: {exc}") from None
    config.stash[RULES] = rules
    config.stash[ALPHA] = compare_alpha(config)
    ref = config.getoption("lem_compare")
    if ref is None:
        if rules:
            raise pytest.UsageError("llenergy: --lem-compare-fail needs --lem-compare [NAME|NUM] (which saved run?)")
        return
    from pytest_llenergy.results.saved import find_saved, load_saved

    try:
        path = find_saved(storage_root(config), ref or None, None)
        config.stash[SAVED] = load_saved(path) | {"path": str(path)}
    except (FileNotFoundError, ValueError) as exc:
        raise pytest.UsageError(f"llenergy: --lem-compare: {exc}") from None


def evaluate(item: pytest.Item, figures: dict[str, Any] | None) -> Verdict | None:
    """Compare this experiment (at its last cycle) or this plain test's windows with the saved run;
    None when not comparing."""
    saved, rules = item.config.stash.get(SAVED, None), item.config.stash.get(RULES, [])
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
                  item.config.stash.get(ALPHA, DEFAULT_ALPHA))


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
            one = _judge(key, previous, metric_values(windows), saved, rules, item.config.stash.get(ALPHA, DEFAULT_ALPHA))
            verdict = verdict or Verdict()
            verdict.checks += one.checks
            verdict.breaches += one.breaches
    return verdict


def _judge(key: str, previous: dict[str, Any], values: dict[str, list[float]], saved: dict[str, Any],
           rules: list[CompareRule], alpha: float) -> Verdict:
    verdict = Verdict()
    for rule in rules:
        result = compare_values(key, previous["metrics"].get(rule.column, []), values.get(rule.column, []), rule, alpha)
        if result is None:
            continue
        verdict.checks.append({"compare": str(rule), "ratio": result.ratio, "ci_low": result.ci_low,
                               "ci_high": result.ci_high, "p_value": result.p_value, "alpha": result.alpha,
                               "regression": result.regression, "saved": saved.get("path")})
        if result.regression:
            verdict.breaches.append(f"vs saved run {saved.get('number', '')} {saved.get('name')}: {result.message()}")
    return verdict
