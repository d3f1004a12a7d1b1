"""Adaptive cycles: ``cycles: {min, max, target_ci_halfwidth, metric}``.

Items are collected for ``max`` cycles; before a cycle beyond ``min`` runs, the experiment's
finished cycles are read back from the run directory and the item is skipped (with the achieved
CI half-width in the reason) once the target is met.
"""

from __future__ import annotations

import pytest

from pytest_llenergy.config.campaign import AdaptiveCycles
from pytest_llenergy.plugin.base import campaign_item, get_run
from pytest_llenergy.plugin.state import CampaignItem, LemRun


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Item setup: skip a cycle beyond ``min`` once the experiment's CI target is met."""
    run, citem = get_run(item.config), campaign_item(item)
    if run is None or citem is None:
        return
    cycles = run.plan.campaign.cycles
    if isinstance(cycles, AdaptiveCycles) and citem.cycle > cycles.min:
        skip_when_precise(run, citem, cycles)


def skip_when_precise(run: LemRun, citem: CampaignItem, cycles: AdaptiveCycles) -> None:
    """Read the experiment's finished cycles back from the run directory; skip the item when their CI
    half-width already meets the target."""
    from pytest_llenergy.results.adaptive import decide
    from pytest_llenergy.results.frame import run_rows
    from pytest_llenergy.results.metrics import metric_column

    column = metric_column(cycles.metric)
    values = [r.get(column) for r in run_rows(run.run_dir)
              if r["experiment_id"] == citem.experiment.id and r["status"] == "passed" and r["cycle"] < citem.cycle]
    decision = decide([v for v in values if v is not None], cycles.min, cycles.target_ci_halfwidth, run.seed)
    if decision.done:
        pytest.skip(f"adaptive cycles: {decision.reason}")
