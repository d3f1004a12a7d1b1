"""``@pytest.mark.energy_budget(...)`` and campaign ``budgets:``: a breach fails that test.

Markers live in one table; their ``--markers`` help is generated from each function's signature
and docstring. With several cycles the verdict is given by the experiment's last cycle, on the
bootstrap CI of all its cycles: it fails only when the CI's lower bound exceeds the budget.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llenergy.config.budgets import Budget
from pytest_llenergy.plugin.base import campaign_item, get_run
from pytest_llenergy.plugin.markers import register_markers
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.state import CampaignItem, LemRun
from pytest_llenergy.results.budgets import Verdict, check_interval, check_point, select_matches


def register(session: LemSession) -> None:
    """Configure step: the ``energy_budget`` marker (and the others) in ``--markers`` (once per run)."""
    register_markers(session.config)


def marker_budget(item: pytest.Item) -> Budget | None:
    marker = item.get_closest_marker("energy_budget")
    if marker is None:
        return None
    if marker.args:
        raise ValueError("energy_budget takes keyword limits only, e.g. energy_budget(energy_per_output_token='0.45 J')")
    return Budget.from_kwargs(dict(marker.kwargs), "marker")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Collection: a bad ``energy_budget`` marker is a usage error before anything runs."""
    for item in items:
        try:
            marker_budget(item)
        except ValueError as exc:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.energy_budget: {exc}") from None


def budgets_for(item: pytest.Item, citem: CampaignItem | None, run: LemRun | None) -> list[Budget]:
    found = [b for b in [marker_budget(item)] if b is not None]
    if citem is not None and run is not None:
        config = citem.config.model_dump(mode="json")
        found += [rule.budget() for rule in run.plan.campaign.budgets
                  if select_matches(rule.select, citem.experiment.id, config)]
    return found


def cycle_values(run: LemRun, citem: CampaignItem, current: dict[str, Any]) -> dict[str, list[float]]:
    """Per column, this experiment's values over every finished cycle plus the current one."""
    from pytest_llenergy.results.frame import run_rows

    values: dict[str, list[float]] = {}
    rows = [r for r in run_rows(run.run_dir)
            if r["experiment_id"] == citem.experiment.id and r["status"] == "passed" and r["cycle"] != citem.cycle]
    for row in [*rows, current]:
        for key, value in row.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
                values.setdefault(key, []).append(float(value))
    return values


def _interval_stats(values: dict[str, list[float]], seed: int) -> dict[str, tuple[float, float | None, int]]:
    from pytest_llenergy.results.stats import bootstrap_ci

    out: dict[str, tuple[float, float | None, int]] = {}
    for column, series in values.items():
        ci = bootstrap_ci(series, seed=seed, n_resamples=2000)
        out[column] = (ci.mean, ci.ci_low, ci.n)
    return out


def evaluate(item: pytest.Item, figures: dict[str, Any] | None) -> Verdict | None:
    """The budget verdict for a finished item, or None when it has no budget."""
    run, citem = get_run(item.config), campaign_item(item)
    budgets = budgets_for(item, citem, run)
    if not budgets:
        return None
    figures = figures or {}
    verdict = Verdict()
    final_cycle = citem is None or run is None or citem.cycle == citem.cycles_total
    multi = citem is not None and run is not None and citem.cycles_total > 1
    stats = None
    if multi and final_cycle and run is not None and citem is not None:
        stats = _interval_stats(cycle_values(run, citem, figures), run.seed)
    for budget in budgets:
        if stats is not None:
            one = check_interval(budget, stats)
        else:
            one = check_point(budget, figures, int(figures.get("n_windows") or 1))
            if multi:
                one.checks = [dict(c, provisional=True) for c in one.checks]
                one.breaches = []
        verdict.breaches += one.breaches
        verdict.checks += one.checks
    return verdict
