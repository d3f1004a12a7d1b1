"""Thermal gaps before campaign items, campaign context lines, and cold starts.

No gap before the first item of a process; a cycle gap replaces (does not add to) the
experiment gap. ``adaptive`` waits until every measured GPU's power and temperature are back near
its baseline, bounded by ``max_wait``; sources without GPU power (estimate, rapl, replay) have
nothing to cool, so adaptive waits nothing there and says so.

On NVML the gap also takes the item's idle re-check (``recheck.py``): the last ``recheck_s`` of a
fixed gap (no extra time), or ``recheck_s`` more once an adaptive gap has settled (the settle
window's own readings are still 1-5 W above idle on an H200: the transient after a window).
"""

from __future__ import annotations

from time import monotonic
from typing import Any

import pytest

from pytest_llenergy.config.campaign import GapsConfig
from pytest_llenergy.energy.sources import SourceError
from pytest_llenergy.plugin.base import (
    RECORDER,
    campaign_item,
    get_run,
    run_setting,
    session_of,
    status_line,
)
from pytest_llenergy.plugin.measurement.context import get_context
from pytest_llenergy.plugin.measurement.recheck import (
    IDLE_READING,
    recheck_before,
    recheck_in_gap,
)


def gap_setting(config: pytest.Config, kind: str) -> float | str:
    """``kind`` is "experiments" or "cycles": seconds, or "adaptive" (the default)."""
    value: float | str = run_setting(config, f"lem_gap_{kind}")
    return value


@pytest.hookimpl(trylast=True)
def pytest_lem_thermal_gap(item: pytest.Item, previous: pytest.Item | None) -> dict[str, Any] | None:
    """The default thermal gap before an item: a fixed wait or an adaptive settle."""
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
    status_line(item.config, f"{label}: waiting {value:g} s")
    return _fixed(item, float(value), label)


def _fixed(item: pytest.Item, seconds: float, label: str) -> dict[str, Any]:
    """Sleep ``seconds``; on NVML the last ``recheck_s`` of them is the idle re-check (``IDLE_READING``)."""
    from pytest_llenergy.energy import fixed_gap

    context = get_context(item.config)
    idle_s = context.settings.baseline.recheck_s
    reason = f"{label}: fixed {seconds:g} s"
    if not (idle_s and seconds >= idle_s and context.ensure_source().kind == "nvml"):
        return fixed_gap(seconds).to_info("fixed") | {"reason": reason}
    started = monotonic()
    fixed_gap(seconds - idle_s)
    reading = recheck_in_gap(context, idle_s)
    fixed_gap(max(0.0, seconds - (monotonic() - started)))  # a failed re-check still waits the whole gap
    info: dict[str, Any] = {"kind": "fixed", "waited_s": monotonic() - started, "reason": reason}
    if reading is not None:
        info |= {"reason": f"{reason}, the last {idle_s:g} s an idle re-check", IDLE_READING: reading}
    return info


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
    idle_s = context.settings.baseline.recheck_s
    if outcome.settled and idle_s:  # the gap ends with the re-check: idle by now, past the post-window transient
        started = monotonic()
        reading = recheck_in_gap(context, idle_s)
        info["waited_s"] += monotonic() - started
        if reading is not None:
            info |= {"reason": f"{info['reason']}, then a {idle_s:g} s idle re-check", IDLE_READING: reading}
    return info


@pytest.hookimpl
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Item setup: the thermal gap after ``session.previous_item``, then the baseline re-check."""
    citem = campaign_item(item)
    run = get_run(item.config)
    if citem is None or run is None:
        return
    if item.config.get_verbosity() > 0:
        status_line(item.config, f"campaign {run.name}: cycle {citem.cycle}/{citem.cycles_total}, "
                f"experiment {citem.index}/{citem.experiments_total} ({citem.experiment.id})")
    session = session_of(item.config)
    previous = session.previous_item
    gap = item.ihook.pytest_lem_thermal_gap(item=item, previous=previous)
    session.previous_item = item
    idle = gap.pop(IDLE_READING, None) if gap is not None else None
    recorder = item.stash.get(RECORDER, None)
    if recorder is not None and gap is not None:
        state, problem = start_state(item.config, gap)
        recorder.gap = {**gap, **state}
        if problem:
            recorder.warnings.append(problem)
    recheck_before(item.config, get_context(item.config), citem, run, idle)


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


