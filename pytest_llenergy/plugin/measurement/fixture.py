"""The ``energy`` fixture: named measurement windows and warmup, in any test.

Inside a campaign item the figures go into the item's result (and its time series into
``timeseries/<item-id>.parquet``); in any test they also go to ``item.user_properties`` (and so
to JUnit XML and the xdist controller).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import pytest

from pytest_llenergy.backends.base import Workload, run_probe
from pytest_llenergy.plugin.base import HANDLES, RECORDER, WINDOWS
from pytest_llenergy.plugin.measurement import phases as phase_figures
from pytest_llenergy.plugin.measurement.context import (
    MeasurementContext,
    cuda_sync_function,
    get_context,
)
from pytest_llenergy.plugin.recorder import ItemRecorder

SUMMARY_KEYS = ("energy_j", "adjusted_energy_j", "duration_s", "mean_power_w", "energy_per_output_token_j",
                "adjusted_energy_per_output_token_j", "source", "estimated", "simulated", "flags")


class EnergyFixture:
    """``with energy.measure("generate") as w: ...; w.record(input_tokens=..., output_tokens=...)``."""

    def __init__(self, item: pytest.Item, context: MeasurementContext, recorder: ItemRecorder | None) -> None:
        from pytest_llenergy.energy import EnergyMeter

        self.item, self.context, self.recorder = item, context, recorder
        source = context.ensure_source()
        self.meter = EnergyMeter(source, context.settings.sample_hz, None, cuda_sync_function(),
                                 use_driver_buffer=context.settings.driver_buffer)
        self._baselined = False
        if recorder is not None:  # a campaign item: its baseline before its warmup and windows
            self._ensure_baseline()
            recorder.baseline = context.baseline_info()
            if context.prime_problem and context.prime_problem not in recorder.warnings:
                recorder.warnings.append(context.prime_problem)
        item.stash[WINDOWS] = []
        item.stash[HANDLES] = []
        self.phase_splits: dict[str, Any] = {}

    def _ensure_baseline(self) -> None:
        """The process's one idle baseline (measured, or from the pytest cache, the first time any test
        needs it; plain tests ask before their first window, so a test that measures nothing waits for none)."""
        if self._baselined:
            return
        spent = self.context.baseline_s
        self.meter.baseline, _ = self.context.ensure_baseline()
        self._baselined = True
        if self.recorder is not None:
            self.recorder.timing["baseline_s"] += self.context.baseline_s - spent

    @contextmanager
    def measure(self, name: str = "window") -> Iterator[Any]:
        """Measure the body as one named window (several windows per test are fine)."""
        self._ensure_baseline()
        self.meter.cuda_sync = cuda_sync_function()
        if self.recorder is not None:  # campaign items: the drift the latest baseline re-check found
            self.meter.baseline_drift_w = self.context.drift_w
        window = None
        try:
            with self.meter.measure(name) as window:
                yield window
        finally:
            result = getattr(window, "result", None)
            if result is not None:
                self._keep(window, result.to_dict())
                self._phases(window)
        errors = [f for f in (result.flags if result is not None else ()) if f.startswith("source_error")]
        if errors:
            pytest.fail(f"energy source failed during window {name!r}: {'; '.join(errors)} "
                        "(partial samples kept and flagged in the result)", pytrace=False)

    def _keep(self, window: Any, figures: dict[str, Any]) -> None:
        if self.recorder is None:  # plain tests: the baseline behind the adjusted figures, or why there is none
            info = self.context.baseline_info()
            figures["baseline_method"] = info["method"] if info else None
            figures["baseline_age_s"] = info["age_s"] if info else None
            figures["baseline_absent"] = self.context.no_baseline_reason()
        self.item.stash[WINDOWS].append(figures)
        self.item.stash.setdefault(HANDLES, []).append(window)
        if self.recorder is not None:
            self.recorder.timing["measured_s"] += float(figures.get("duration_s") or 0.0)
        positions: dict[str, int] = {}
        self._properties(figures, positions)

        def update(result: Any) -> None:  # tokens recorded after the block
            figures.update({k: v for k, v in result.to_dict().items() if k not in ("flags", "devices")})
            self._properties(figures, positions)

        window.listeners.append(update)
        if self.recorder is not None:
            run_dir = self.recorder.run.run_dir
            try:
                path = self.meter.write_timeseries(run_dir.timeseries_path(self.recorder.item.id))
            except (OSError, ImportError) as exc:  # full disk, or no parquet engine installed
                figures.setdefault("flags", []).append("timeseries_not_written")
                self.recorder.warnings.append(f"time series not written: {exc}")
            else:
                self.recorder.timeseries_path = run_dir.relative(path)

    def _properties(self, figures: dict[str, Any], positions: dict[str, int]) -> None:
        """The window's summary in ``user_properties`` (JUnit XML), overwriting earlier entries."""
        props = self.item.user_properties
        for key in SUMMARY_KEYS:
            value = figures.get(key)
            if value is None or value == []:
                continue
            entry = (f"energy.{figures['name']}.{key}", ",".join(value) if isinstance(value, list) else value)
            if key in positions:
                props[positions[key]] = entry
            else:
                positions[key] = len(props)
                props.append(entry)

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

    def _warm_shapes(self, session: Any, workload: Workload, outcome: Any, probe: str | None,
                     max_time_s: float | None) -> tuple[Any, str]:
        """After the probes: ``workload.warmup_runs()``, each once (bounded by the warmup's time budget
        beyond the first), so no batch shape or serving path is new inside a measured window."""
        from pytest_llenergy.energy.warmup import warm_shapes

        shapes = workload.warmup_runs()
        ran, seconds = warm_shapes([partial(session.run, w) for w in shapes], outcome.duration_s, max_time_s)
        new = f"{workload.output_tokens} new tokens"
        if workload.arrivals is not None:
            probe = f"{probe}; then the whole workload once on its serving path ({workload.num_prompts} requests, {new})"
        elif len(shapes) == 1:
            probe = f"{probe}; then the first batch once at full length ({new})"
        else:
            probe = f"{probe}; then {ran} of its {len(shapes)} batch shapes once each at full length ({new})"
        if ran < len(shapes) and self.recorder is not None:
            self.recorder.warnings.append(
                f"warmup: {len(shapes) - ran} of {len(shapes)} batch shapes not run at full length before "
                f"measuring (warmup.max_time_s {max_time_s} s reached); the first window pays their "
                "one-time costs")
        return replace(outcome, duration_s=outcome.duration_s + seconds), probe

    def warmup(self, fn: Callable[[], Any] | None = None, *, session: Any = None, workload: Workload | None = None,
               key: Hashable | None = None) -> Any:
        """Warm up before measuring, per the warmup settings; returns the ``WarmupResult``.

        ``energy.warmup(session=lem_session, workload=workload)`` times a cheap probe of the real
        shapes (the first batch, ``probe_tokens`` new tokens) and pays the full warmup once per
        loaded session and workload shape in this process, ending with the first batch once at full
        length (so caches and allocator pools reach the measured run's size: without it the first
        measured window after a load ran ~2x longer on an H200); later calls re-warm with
        ``rewarm_iterations`` probes. ``energy.warmup(fn)`` runs ``fn`` instead (once per ``key``
        when a key is given, else in full every time). Always bounded by ``max_time_s``.
        """
        from pytest_llenergy.energy.warmup import rewarm, run_warmup

        s = self.context.settings.warmup
        probe = None
        if session is not None:
            if workload is None:
                raise TypeError("energy.warmup(session=...) needs workload= (the prepared workload)")
            rows = len(workload.batches[0]) if workload.batches else 0
            longest = max((len(p) for p in workload.batches[0]), default=0) if workload.batches else 0
            probe = f"first batch ({rows} x {longest} tokens), {workload.probe(s.probe_tokens).output_tokens} new tokens"
            fn, key = (lambda: run_probe(session, workload, s.probe_tokens)), ("shape", workload.shape)
        elif fn is None:
            raise TypeError("energy.warmup needs fn, or session= and workload=")
        warmed = self.context.warmed(session)
        if s.once and s.mode != "off" and key is not None and key in warmed:
            outcome = rewarm(fn, s.rewarm_iterations, max_time_s=s.max_time_s)
        else:
            outcome = run_warmup(fn, s.mode, s.cv_threshold, s.window, s.min_iterations, s.max_iterations,
                                 s.iterations, max_time_s=s.max_time_s)
            if session is not None and workload is not None and s.mode != "off" and workload.batches:
                outcome, probe = self._warm_shapes(session, workload, outcome, probe, s.max_time_s)
            if key is not None:
                warmed.add(key)
        outcome = replace(outcome, probe=probe)
        info = outcome.to_dict()
        if self.recorder is not None:
            self.recorder.warmup = info
            self.recorder.timing["warmup_s"] += outcome.duration_s
        for name in ("mode", "outcome", "converged", "iterations", "final_cv", "duration_s"):
            if info.get(name) is not None:
                self.item.user_properties.append((f"energy.warmup.{name}", info[name]))
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
