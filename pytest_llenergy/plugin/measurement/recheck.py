"""Baseline re-checks between campaign items, and the baseline-drift part of each item's uncertainty.

Before every campaign item idle power is re-measured briefly (``measurement.baseline.recheck_s``,
NVML only) as part of the thermal gap: the last ``recheck_s`` of a fixed gap, or the end of an
adaptive one once it settled (the settle window's readings are still in the post-window transient).
Only where the gap gives none (a gap shorter than ``recheck_s`` or one that did not settle) is it
taken after the gap, as baseline time; before the first item a baseline measured just now is the
reading.
The item then subtracts the long baseline moved by the drift that re-check read on the power
series (``energy.baseline.tracked``; method ``tracked``), so idle drifting over a campaign is
followed item by item instead of in steps. Only a re-check its gap took counts, and only within
``drift_threshold``: one taken after a gap that did not settle (or gave none) may still hold the
last window's tail, so it is drift evidence only, and the item keeps the baseline in force. Every
re-check also feeds the next revalidation (``BaselineCache.note_idle``). The item's windows carry a
provisional drift (how far idle moved since the previous re-check); once the reading after the item
exists (before the next item) the item's stored result is updated with the drift between the two
readings that bracket it (``energy.baseline.bracket_drift_w``).
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter
from typing import Any

import pytest

from pytest_llenergy.energy.baseline import bracket_drift_w, tracked
from pytest_llenergy.energy.baseline_reading import BaselineReading
from pytest_llenergy.energy.uncertainty import adjusted_total, is_uncertain, quadrature
from pytest_llenergy.plugin.base import status_line
from pytest_llenergy.plugin.measurement.context import MeasurementContext
from pytest_llenergy.plugin.state import CampaignItem, LemRun
from pytest_llenergy.results.schema import ExperimentResult, WindowEnergy

#: a baseline at most this old (seconds) is the reading before the first item (no separate re-check)
JUST_MEASURED_S = 60.0
#: key of the gap info under which a gap hands its idle re-check (a ``BaselineReading``) to the item
IDLE_READING = "idle_reading"


@dataclass
class Pending:
    """The item measured after the latest re-check: where its result lives, the idle level before it
    and the baseline it subtracted."""

    run: LemRun
    experiment_id: str
    cycle: int
    before_w: dict[str, float]
    used_w: dict[str, float]


def recheck_before(config: pytest.Config, context: MeasurementContext, citem: CampaignItem, run: LemRun,
                   idle: BaselineReading | None = None) -> None:
    """Track the baseline ``citem`` subtracts to ``idle`` (the re-check its gap took, or one taken now
    when the gap gave none), settle the previous item's drift, and set ``citem``'s provisional drift."""
    seconds = context.settings.baseline.recheck_s
    source = context.ensure_source()
    if not seconds or source.kind != "nvml":
        return
    baseline, _ = context.ensure_baseline()
    cache = context.baseline_cache
    if baseline is None or cache is None:
        return
    fresh = context.recheck_pending is None and context.baseline_method == "fresh" \
        and cache.age(baseline) <= JUST_MEASURED_S
    from_gap = idle is not None
    if idle is None and fresh:  # the first item right after a fresh baseline: that is the reading before it
        idle = baseline
    else:
        idle = idle if idle is not None else _extra_recheck(config, context, seconds)
        if idle is None:
            return
        cache.note_idle(idle)
    # the idle level on the anchor's scale (drift evidence either way); subtracted only where trackable
    level_of = tracked(cache.current or baseline, idle) if idle is not baseline else None
    moved = level_of if from_gap and trackable(context, level_of) else None
    if moved is not None:
        context.baseline, context.baseline_method = moved, "tracked"
    level = dict((level_of or idle).power_w)
    used = dict(context.baseline.power_w)
    pending = context.recheck_pending
    if pending is not None:
        settle_drift(pending, bracket_drift_w(pending.before_w, level, pending.used_w), level)
    # until the re-check after it settles it: how far idle moved since the previous re-check (tracked),
    # or how far the re-check sits from the baseline subtracted
    context.drift_w = (bracket_drift_w(level, None, pending.before_w) if moved is not None and pending is not None
                       else bracket_drift_w(level, None, used))
    context.recheck_before_w = level
    context.recheck_pending = Pending(run, citem.experiment.id, citem.cycle, level, used)


def trackable(context: MeasurementContext, moved: BaselineReading | None) -> bool:
    """Whether an item may subtract ``moved`` (the anchor moved to a re-check its gap took): not where
    the series moved past ``drift_threshold`` (not idle: a GPU still busy, or a new state the next
    revalidation re-measures) or could not tell."""
    return moved is not None and (moved.drift_pct or 0.0) <= 100.0 * context.settings.baseline.drift_threshold


def recheck_in_gap(context: MeasurementContext, seconds: float) -> BaselineReading | None:
    """An idle re-check of ``seconds`` taken as part of a gap (gap time, not baseline time); None when
    there is no baseline to check or the reading failed (the item then takes its own)."""
    baseline, _ = context.ensure_baseline()
    if baseline is None or context.baseline_cache is None:
        return None
    try:
        return context.baseline_cache.recheck(context.ensure_source(), seconds)
    except Exception:  # noqa: BLE001 - a failed re-check costs the drift evidence, never the item
        return None


def _extra_recheck(config: pytest.Config, context: MeasurementContext, seconds: float) -> BaselineReading | None:
    """A re-check the gap did not give (first item, a short or unsettled gap): extra baseline time."""
    assert context.baseline_cache is not None
    status_line(config, f"baseline re-check: {seconds:g} s")
    started = perf_counter()
    try:
        return context.baseline_cache.recheck(context.ensure_source(), seconds)
    except Exception as exc:  # a failed re-check costs the drift evidence, never the item
        status_line(config, f"baseline re-check failed: {exc}")
        return None
    finally:
        context.baseline_s += perf_counter() - started


def settle_drift(pending: Pending, drift_w: dict[str, float], after_w: dict[str, float] | None = None) -> bool:
    """Rewrite the pending item's result with the bracketing drift (and the re-check after it, ``after_w``);
    False when it has no result."""
    run_dir = pending.run.run_dir
    result = run_dir.read_result(pending.experiment_id, pending.cycle)
    if result is None:
        return False
    updated = with_drift(result, quadrature(drift_w.values()))
    if after_w is not None and updated.baseline is not None:
        updated = updated.model_copy(update={"baseline": updated.baseline.model_copy(update={"recheck_after_w": after_w})})
    try:
        run_dir.write_result(updated)
    except OSError:
        return False
    return True


def with_drift(result: ExperimentResult, drift_w: float) -> ExperimentResult:
    """The result with every adjusted window's drift part (and totals, ``uncertain``) recomputed."""
    windows = [_window_with_drift(w, drift_w) for w in result.windows]
    energy = _window_with_drift(result.energy, drift_w) if result.energy is not None else None
    return result.model_copy(update={"windows": windows, "energy": energy})


def _window_with_drift(w: WindowEnergy, drift_w: float) -> WindowEnergy:
    if w.adjusted_uncertainty_j is None or w.uncertainty_j is None:
        return w
    parts = {**w.uncertainty_parts_j, "baseline_drift": drift_w * w.duration_s}
    adjusted = adjusted_total(w.uncertainty_j, parts)
    uncertain = is_uncertain(w.uncertainty_j, w.energy_j, adjusted, w.adjusted_energy_j)
    flags = [f for f in w.flags if f != "uncertain"] + (["uncertain"] if uncertain else [])
    update: dict[str, Any] = {"uncertainty_parts_j": parts, "adjusted_uncertainty_j": adjusted,
                              "uncertain": uncertain, "flags": flags}
    return w.model_copy(update=update)
