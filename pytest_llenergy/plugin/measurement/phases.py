"""The pytest side of phase figures: put a window's split into the item's result (phases, serving)
and write its request table into the run directory. The computation is :mod:`pytest_llenergy.energy.phase_figures`;
its ``split``, ``resolve`` and ``baseline_terms`` are what the ``energy`` fixture calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llenergy.energy.phase_figures import (
    baseline_terms,
    request_rows,
    resolve,
    serving_stats,
    split,
)
from pytest_llenergy.results.requests import write_requests

if TYPE_CHECKING:
    from pytest_llenergy.config.phases import PhaseSettings
    from pytest_llenergy.energy.meter import Window
    from pytest_llenergy.energy.phases import WindowPhases
    from pytest_llenergy.plugin.recorder import ItemRecorder

__all__ = ["baseline_terms", "record", "resolve", "split"]


def record(recorder: ItemRecorder, result: WindowPhases, window: Window, settings: PhaseSettings) -> None:
    """Put the split of the item's primary window into its result (phases, requests, serving)."""
    fields = recorder.phase_fields
    tl = window.timeline
    if "phases" in fields or tl is None:
        return  # the primary window is the first one with a timeline
    fields["phases"] = {k: v.to_dict() for k, v in result.phases.items()}
    fields["phase_info"] = {"source": tl.source, "clock": tl.clock, "requests": len(tl.requests),
                            "lag_s": settings.sample_lag_s, "repeats": 0,
                            "flags": [*result.flags, *tl.caveats]}
    arrivals = recorder.item.config.workload.arrivals
    if arrivals is not None:
        fields["serving"] = serving_stats(result, tl, arrivals)
    if settings.requests:
        run_dir = recorder.run.run_dir
        path = run_dir.requests_path(recorder.item.id)
        try:
            write_requests(path, request_rows(result, window))
        except (OSError, ImportError) as exc:
            recorder.warnings.append(f"request table not written: {exc}")
        else:
            fields["requests_path"] = run_dir.relative(path)
