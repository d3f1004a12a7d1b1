"""The ``energy`` fixture: named measurement windows and warmup, in any test.

Inside a campaign item the figures go into the item's result (and its time series into
``timeseries/<item-id>.parquet``); in any test they also go to ``item.user_properties`` (and so
to JUnit XML and the xdist controller).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pytest_llenergy.plugin.base import RECORDER
from pytest_llenergy.plugin.measurement import phases as phase_figures
from pytest_llenergy.plugin.measurement.context import (
    MeasurementContext,
    cuda_sync_function,
    get_context,
)
from pytest_llenergy.plugin.measurement.recorder import WINDOWS, ItemRecorder

SUMMARY_KEYS = ("energy_j", "adjusted_energy_j", "duration_s", "mean_power_w", "energy_per_output_token_j",
                "adjusted_energy_per_output_token_j", "source", "estimated", "simulated", "flags")


class EnergyFixture:
    """``with energy.measure("generate") as w: ...; w.record(input_tokens=..., output_tokens=...)``."""

    def __init__(self, item: pytest.Item, context: MeasurementContext, recorder: ItemRecorder | None) -> None:
        from pytest_llenergy.energy import EnergyMeter

        self.item, self.context, self.recorder = item, context, recorder
        source = context.ensure_source()
        baseline, _ = context.ensure_baseline()
        self.meter = EnergyMeter(source, context.settings.sample_hz, baseline, cuda_sync_function(),
                                 use_driver_buffer=context.settings.driver_buffer)
        if recorder is not None:
            recorder.baseline = context.baseline_info()
            if context.prime_problem and context.prime_problem not in recorder.warnings:
                recorder.warnings.append(context.prime_problem)
        item.stash[WINDOWS] = []
        self.phase_splits: dict[str, Any] = {}

    @contextmanager
    def measure(self, name: str = "window") -> Iterator[Any]:
        """Measure the body as one named window (several windows per test are fine)."""
        self.meter.cuda_sync = cuda_sync_function()
        window = None
        try:
            with self.meter.measure(name) as window:
                yield window
        finally:
            result = getattr(window, "result", None)
            if result is not None:
                self._keep(result.to_dict())
                self._phases(window)
        errors = [f for f in (result.flags if result is not None else ()) if f.startswith("source_error")]
        if errors:
            pytest.fail(f"energy source failed during window {name!r}: {'; '.join(errors)} "
                        "(partial samples kept and flagged in the result)", pytrace=False)

    def _keep(self, figures: dict[str, Any]) -> None:
        self.item.stash[WINDOWS].append(figures)
        for key in SUMMARY_KEYS:
            value = figures.get(key)
            if value is not None and value != []:
                value = ",".join(value) if isinstance(value, list) else value
                self.item.user_properties.append((f"energy.{figures['name']}.{key}", value))
        if self.recorder is not None:
            run_dir = self.recorder.run.run_dir
            try:
                path = self.meter.write_timeseries(run_dir.timeseries_dir / f"{self.recorder.item.id}.parquet")
            except (OSError, ImportError) as exc:  # full disk, or no parquet engine installed
                figures.setdefault("flags", []).append("timeseries_not_written")
                self.recorder.warnings.append(f"time series not written: {exc}")
            else:
                self.recorder.timeseries_path = str(path.relative_to(run_dir.path))

    def _phases(self, window: Any) -> None:
        settings = self.context.settings.phases
        if not settings.enabled or window.timeline is None:
            return
        result = phase_figures.split(self.meter, window, settings)
        if result is None:
            return
        self.phase_splits[window.name] = result
        for name, phase in result.phases.items():
            self.item.user_properties.append((f"energy.{window.name}.{name}_energy_j", phase.energy_j))
        if self.recorder is not None:
            phase_figures.record(self.recorder, result, window, settings)

    def resolve_phases(self, name: str, fn: Callable[[], Any]) -> dict[str, Any] | None:
        """Phase-resolved averaging: re-run ``fn`` (returning GenerationStats) ``measurement.phases.repeats``
        times at random offsets and average the phases of window ``name`` over all runs (None when off)."""
        from pytest_llenergy.energy import EnergyMeter

        settings = self.context.settings.phases
        first = self.phase_splits.get(name)
        if first is None or settings.repeats == 0:
            return None
        m = self.meter
        figures = phase_figures.resolve(
            lambda: EnergyMeter(m.source, m.sample_hz, m.baseline, m.cuda_sync, use_driver_buffer=m.use_driver_buffer),
            first, fn, settings, phase_figures.baseline_terms(m, first.baseline_w))
        if self.recorder is not None and "phases" in self.recorder.phase_fields:
            self.recorder.phase_fields["phases"].update(figures)
            self.recorder.phase_fields["phase_info"]["repeats"] = settings.repeats
        return figures

    def warmup(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` until its latency is stable (or a fixed count), per the warmup settings."""
        from pytest_llenergy.energy import run_warmup

        s = self.context.settings.warmup
        outcome = run_warmup(fn, s.mode, s.cv_threshold, s.window, s.min_iterations, s.max_iterations, s.iterations)
        info = outcome.to_dict()
        if self.recorder is not None:
            self.recorder.warmup = info
        for key in ("mode", "converged", "iterations", "final_cv"):
            if info.get(key) is not None:
                self.item.user_properties.append((f"energy.warmup.{key}", info[key]))
        return outcome


@pytest.fixture
def energy(request: pytest.FixtureRequest) -> Iterator[EnergyFixture]:
    """Measure energy over named windows: ``with energy.measure("name") as w: ...``."""
    context = get_context(request.config)
    recorder = request.node.stash.get(RECORDER, None)
    fixture = EnergyFixture(request.node, context, recorder)
    yield fixture
    if recorder is not None:
        context.next_experiment()
