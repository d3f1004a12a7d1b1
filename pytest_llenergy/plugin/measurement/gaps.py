"""Thermal gaps before campaign items, campaign context lines, and cold starts.

No gap before the first item of a process; a cycle gap replaces (does not add to) the
experiment gap. ``adaptive`` waits until every measured GPU's power and temperature are back near
its baseline, bounded by ``max_wait``; sources without GPU power (estimate, rapl, replay) have
nothing to cool, so adaptive waits nothing there and says so.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llenergy.config.campaign import GapsConfig
from pytest_llenergy.energy.sources import SourceError
from pytest_llenergy.plugin.base import PREVIOUS_ITEM, RECORDER, campaign_item, status_line
from pytest_llenergy.plugin.measurement.context import get_context
from pytest_llenergy.plugin.measurement.recheck import recheck_before
from pytest_llenergy.plugin.state import get_run, run_setting


def gap_setting(config: pytest.Config, kind: str) -> float | str:
    """``kind`` is "experiments" or "cycles": seconds, or "adaptive" (the default)."""
    value: float | str = run_setting(config, f"lem_gap_{kind}")
    return value


@pytest.hookimpl(trylast=True)
def pytest_lem_thermal_gap(item: pytest.Item, previous: pytest.Item | None) -> dict[str, Any] | None:
    if previous is None:
        return {"kind": "none", "waited_s": 0.0, "reason": "first item of this process"}
    current, before = campaign_item(item), campaign_item(previous)
    kind = "cycles" if before is not None and current is not None and before.cycle != current.cycle else "experiments"
    value = gap_setting(item.config, kind)
    label = "cycle gap" if kind == "cycles" else "experiment gap"
    if value == "adaptive":
        return _adaptive(item, label)
    if not value:
        return {"kind": "none", "waited_s": 0.0, "reason": f"{label} 0 s"}
    from pytest_llenergy.energy import fixed_gap

    status_line(item.config, f"{label}: waiting {value:g} s")
    return fixed_gap(float(value)).to_info("fixed") | {"reason": f"{label}: fixed {value:g} s"}


def _adaptive(item: pytest.Item, label: str) -> dict[str, Any]:
    context = get_context(item.config)
    source = context.ensure_source()
    if source.kind != "nvml":
        return {"kind": "adaptive", "waited_s": 0.0, "reason": f"{label}: {source.kind} source has no GPU to cool"}
    baseline, _ = context.ensure_baseline()
    if baseline is None:
        return {"kind": "adaptive", "waited_s": 0.0, "reason": f"{label}: no baseline to settle to (baseline off)"}
    from pytest_llenergy.energy import wait_until_settled

    run = get_run(item.config)
    gaps = run.plan.campaign.gaps if run is not None else GapsConfig()
    outcome = wait_until_settled(
        source, baseline.power_w, baseline.temperature_c,
        power_tolerance=gaps.power_tolerance, temp_tolerance_c=gaps.temp_tolerance_c,
        max_wait_s=float(run_setting(item.config, "lem_gap_max_wait")), hz=context.settings.sample_hz,
        on_status=lambda message: status_line(item.config, f"{label}: {message}"),
    )
    info = outcome.to_info("adaptive")
    info["reason"] = f"{label}: {outcome.reason}"
    return info


@pytest.hookimpl
def pytest_runtest_setup(item: pytest.Item) -> None:
    citem = campaign_item(item)
    run = get_run(item.config)
    if citem is None or run is None:
        return
    if item.config.get_verbosity() > 0:
        status_line(item.config, f"campaign {run.name}: cycle {citem.cycle}/{citem.cycles_total}, "
                f"experiment {citem.index}/{citem.experiments_total} ({citem.experiment.id})")
    previous = item.config.stash.get(PREVIOUS_ITEM, None)
    gap = item.ihook.pytest_lem_thermal_gap(item=item, previous=previous)
    item.config.stash[PREVIOUS_ITEM] = item
    recorder = item.stash.get(RECORDER, None)
    if recorder is not None and gap is not None:
        state, problem = start_state(item.config, gap)
        recorder.gap = {**gap, **state}
        if problem:
            recorder.warnings.append(problem)
    recheck_before(item.config, get_context(item.config), citem, run)


def start_state(config: pytest.Config, gap: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Power and temperature per device as the item starts (what the gap left behind), and why
    they could not be read ("" when they were)."""
    if gap.get("start_power_w"):
        return {}, ""
    try:
        source = get_context(config).ensure_source()
        power = source.read_power()
        temps = source.read_aux().get("temperature_c")
    except SourceError as exc:  # recorded as a warning; the window's own edges are what count
        return {}, f"power and temperature at the item's start not read: {exc}"
    labels = [d.label for d in source.devices()]
    out: dict[str, Any] = {"start_power_w": {k: float(v) for k, v in zip(labels, power) if v == v}}
    if temps is not None:
        out["start_temperature_c"] = {k: float(v) for k, v in zip(labels, temps) if v == v}
    return out, ""


