"""From campaign to items: load in configure, parametrise, order, and tell the user the plan."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llenergy.config.ordering import campaign_order, place_in_slots
from pytest_llenergy.plugin.base import (
    EXPERIMENT_ARG,
    GPU_KINDS,
    campaign_item,
    get_run,
    run_setting,
    session_of,
)
from pytest_llenergy.plugin.collection.resume import deselect_done
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.state import create_run
from pytest_llenergy.results.schema import result_key


def load_campaign(session: LemSession) -> None:
    """Configure step: load the campaign the run names (``session.run``; None without one)."""
    session.config.addinivalue_line("markers", "lem_campaign_item: a campaign item (set by pytest-llenergy).")
    session.run = create_run(session.config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Collection: one item per (experiment, cycle) of ``session.run``."""
    if EXPERIMENT_ARG not in metafunc.fixturenames:
        return
    run = get_run(metafunc.config)
    if run is None:
        return
    items = run.items()
    metafunc.parametrize(EXPERIMENT_ARG, items, ids=[item.id for item in items])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Collection: put campaign items in the run's order; drop those a resumed run finished."""
    run = get_run(config)
    if run is None:
        return
    found = [campaign_item(item) for item in items]
    flags = [c is not None for c in found]
    campaign_items = [item for item, c in zip(items, found) if c is not None]
    keys = [(c.index, c.cycle) for c in found if c is not None]
    ordered = [campaign_items[i] for i in campaign_order(keys, run.order, run.seed)]
    items[:] = place_in_slots(items, flags, ordered)
    if run.done:
        found = [campaign_item(item) for item in items]
        deselect_done(config, items, [result_key(c.experiment.id, c.cycle) if c else None for c in found])


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """Header: the energy source, the campaign and its plan, where results go, what the source skips."""
    run = get_run(config)
    if run is None:
        return None
    n = len(run.plan.experiments)
    seed = f"{run.seed} (drawn; pass --lem-seed {run.seed} to repeat)" if run.seed_drawn else str(run.seed)
    context = session_of(config).measurement()
    context.ensure_source()
    return [
        f"llenergy: energy source: {context.reason}",
        f"llenergy: campaign {run.name} ({run.extras.get('campaign_arg', run.plan.source)}): {n} experiments x {run.cycles} cycles"
        f" = {n * run.cycles} items, order {run.order}, seed {seed}",
        *([f"llenergy: {text}"] if (text := " ".join(run.plan.campaign.description.split())) else []),
        f"llenergy: results -> {run.run_dir.path}",
        *skipped_lines(config, context),
    ]


def skipped_lines(config: pytest.Config, context: Any) -> list[str]:
    """What the campaign asks for that this source cannot do (the baseline, adaptive gaps), said once
    here rather than only as ``baseline: null`` and 0 s gaps in the results."""
    kind, skipped = context.source.kind, []
    baseline = context.settings.baseline
    if baseline.enabled and kind not in GPU_KINDS:
        skipped.append(f"the {baseline.duration_s:g} s idle baseline is skipped (no idle power to measure: no "
                       "adjusted figures, budgets and compare rules judge raw energy)")
    adaptive = [k for k in ("experiments", "cycles") if run_setting(config, f"lem_gap_{k}") == "adaptive"]
    if adaptive and kind != "nvml":
        skipped.append(f"adaptive gaps between {' and '.join(adaptive)} wait 0 s (no GPU to cool)")
    return [f"llenergy: {kind} source: {'; '.join(skipped)}"] if skipped else []


def pytest_report_collectionfinish(config: pytest.Config) -> list[str] | None:
    """After collection: grid points dropped or merged."""
    run = get_run(config)
    if run is None:
        return None
    lines = [f"llenergy: {line}" for line in run.plan.dropped_summary()]
    if run.plan.duplicates:
        lines.append(f"llenergy: {run.plan.duplicates} duplicate grid points merged (identical effective configs)")
    return lines or None
