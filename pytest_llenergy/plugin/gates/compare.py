"""``--lem-save`` / ``--lem-autosave`` / ``--lem-compare`` / ``--lem-compare-fail``.

The comparison fails the affected tests: each experiment's last cycle compares all its cycles
with the saved run's (bootstrap CI of the ratio with >= 3 cycles on both sides).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.plugin.base import campaign_item
from pytest_llenergy.plugin.gates.budgets import cycle_values
from pytest_llenergy.plugin.options import resolve
from pytest_llenergy.plugin.state import get_run
from pytest_llenergy.results.budgets import Verdict
from pytest_llenergy.results.compare import CompareRule, compare_values, parse_rules

SAVED = pytest.StashKey[dict[str, Any]]()
RULES = pytest.StashKey[list[CompareRule]]()


def storage_root(config: pytest.Config) -> Path:
    path = Path(resolve(config, "lem_storage"))
    return path if path.is_absolute() else config.rootpath / path


def pytest_configure(config: pytest.Config) -> None:
    rules = parse_rules(resolve(config, "lem_compare_fail"))  # validated by the option's parser
    config.stash[RULES] = rules
    ref = resolve(config, "lem_compare")
    if ref is None:
        if rules:
            raise pytest.UsageError("llenergy: --lem-compare-fail needs --lem-compare [NAME|NUM] (which saved run?)")
        return
    from pytest_llenergy.results.saved import find_saved, load_saved

    try:
        path = find_saved(storage_root(config), None if ref in ("", "latest") else ref, None)
        config.stash[SAVED] = load_saved(path) | {"path": str(path)}
    except (FileNotFoundError, ValueError) as exc:
        raise pytest.UsageError(f"llenergy: --lem-compare: {exc}") from None


def evaluate(item: pytest.Item, figures: dict[str, Any] | None) -> Verdict | None:
    """Compare this experiment with the saved run at its last cycle; None when not comparing."""
    saved, rules = item.config.stash.get(SAVED, None), item.config.stash.get(RULES, [])
    citem, run = campaign_item(item), get_run(item.config)
    if saved is None or not rules or citem is None or run is None or citem.cycle != citem.cycles_total:
        return None
    previous = saved["experiments"].get(citem.experiment.id)
    if previous is None:
        return None
    values = cycle_values(run, citem, figures or {})
    verdict = Verdict()
    for rule in rules:
        result = compare_values(citem.experiment.id, previous["metrics"].get(rule.column, []),
                                values.get(rule.column, []), rule, run.seed)
        if result is None:
            continue
        verdict.checks.append({"compare": str(rule), "ratio": result.ratio, "ci_low": result.ci_low,
                               "ci_high": result.ci_high, "regression": result.regression, "saved": saved.get("path")})
        if result.regression:
            verdict.breaches.append(f"vs saved run {saved.get('number', '')} {saved.get('name')}: {result.message()}")
    return verdict
