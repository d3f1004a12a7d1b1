"""``EnergyMeter``: named measurement windows over an energy source.

At each edge of ``measure()``: synchronise the accelerator (``cuda_sync``), read the energy
counters and throttle counters, start/stop the sampler. Source failures never raise out of a
window: they become ``source_error:<text>`` flags and the samples taken so far are kept. An
exception raised by the body closes the window (flag ``aborted``) and propagates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pytest_llenergy.config.files import write_atomically
from pytest_llenergy.energy.edges import CounterReads
from pytest_llenergy.energy.measurement import (
    Measurement,
    WindowInputs,
    build_measurement,
    with_tokens,
)
from pytest_llenergy.energy.sampler import MAX_HZ, MIN_HZ, SAMPLE_HZ, Sampler, Timeseries
from pytest_llenergy.energy.sources.base import EnergySource, SourceError

if TYPE_CHECKING:
    import pandas as pd

    from pytest_llenergy.config.timeline import PhaseTimeline
    from pytest_llenergy.energy.baseline_reading import BaselineReading


class Window:
    """The handle yielded by :meth:`EnergyMeter.measure`; ``result`` is set on exit.

    ``record()`` counts inside the block and after it: tokens recorded once the window has closed
    update ``result`` (and whoever listens, e.g. the ``energy`` fixture), until :meth:`seal`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.result: Measurement | None = None
        #: the engine's phase timeline of the work inside the window (``record(timeline=...)``)
        self.timeline: PhaseTimeline | None = None
        #: the window's edges on each host clock (perf_counter, monotonic, time), set on exit
        self.host_edges: dict[str, tuple[float, float]] = {}
        #: called with the new result when tokens are recorded after the window closed
        self.listeners: list[Callable[[Measurement], None]] = []
        self.sealed: str | None = None

    def record(self, input_tokens: int | None = None, output_tokens: int | None = None,
               timeline: PhaseTimeline | None = None) -> None:
        """Add token counts processed inside the window (calls accumulate), and the phase timeline."""
        if self.sealed is not None:
            raise RuntimeError(f"window {self.name!r}: record() came too late ({self.sealed}); call "
                               "w.record(...) inside the test, in the `with energy.measure(...) as w:` "
                               "block or after it")
        if timeline is not None:
            self.timeline = timeline
        if input_tokens is not None:
            self.input_tokens = (self.input_tokens or 0) + int(input_tokens)
        if output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + int(output_tokens)
        if self.result is not None and (input_tokens is not None or output_tokens is not None):
            self.result = with_tokens(self.result, self.input_tokens, self.output_tokens)
            for listener in self.listeners:
                listener(self.result)

    def seal(self, why: str) -> None:
        """Refuse later ``record()`` calls, saying ``why`` (the figures were reported)."""
        self.sealed = why


HOST_CLOCKS = (("perf_counter", time.perf_counter), ("monotonic", time.monotonic), ("time", time.time))


class _Edge:
    __slots__ = ("t", "ta", "tb", "counters", "throttle", "errors", "host")

    def __init__(self, source: EnergySource, throttle_first: bool) -> None:
        self.errors: list[str] = []
        self.counters: np.ndarray | None = None
        self.throttle: dict[str, np.ndarray] | None = None
        if throttle_first:
            self._read_throttle(source)
        self.ta = source.clock()
        before = [clock() for _, clock in HOST_CLOCKS]
        try:
            self.counters = source.read_counters()
        except SourceError as exc:
            self.errors.append(str(exc))
        self.host = {name: 0.5 * (b + clock()) for (name, clock), b in zip(HOST_CLOCKS, before)}
        self.tb = source.clock()
        self.t = 0.5 * (self.ta + self.tb)
        if not throttle_first:
            self._read_throttle(source)

    def _read_throttle(self, source: EnergySource) -> None:
        try:
            self.throttle = source.read_throttle()
        except SourceError as exc:
            self.errors.append(str(exc))


def _overhead(source: EnergySource, series: Timeseries) -> list[float] | None:
    get = getattr(source, "overhead_j", None)
    values = get(series.thread_cpu_s) if get is not None else None
    return None if values is None else [float(v) for v in values]


class EnergyMeter:
    """Measures named windows; keeps every window's figures and time series."""

    def __init__(
        self,
        source: EnergySource,
        sample_hz: float = SAMPLE_HZ,
        baseline: BaselineReading | None = None,
        cuda_sync: Callable[[], None] | None = None,
        *,
        use_driver_buffer: bool = True,
    ) -> None:
        if not MIN_HZ <= float(sample_hz) <= MAX_HZ:
            raise ValueError(f"sample_hz must be within {MIN_HZ:g}..{MAX_HZ:g}, got {sample_hz}")
        self.source = source
        self.sample_hz = float(sample_hz)
        self.baseline = baseline
        self.cuda_sync = cuda_sync
        self.use_driver_buffer = use_driver_buffer
        #: Idle power drift per device (W) the next windows carry in their uncertainty (baseline re-checks).
        self.baseline_drift_w: dict[str, float] | None = None
        self._records: list[tuple[Measurement, Timeseries]] = []

    @contextmanager
    def measure(self, name: str = "window") -> Iterator[Window]:
        """Measure the body; ``window.result`` holds the :class:`Measurement` afterwards."""
        if self.cuda_sync is not None:
            self.cuda_sync()
        start = _Edge(self.source, throttle_first=True)
        sampler = Sampler(self.source, self.sample_hz, use_driver_buffer=self.use_driver_buffer)
        sampler.start(start.t)
        window = Window(name)
        aborted, sync_error = False, None
        try:
            yield window
        except BaseException:
            aborted = True
            raise
        finally:
            if self.cuda_sync is not None:
                try:
                    self.cuda_sync()
                except Exception as exc:  # re-raised below once the window is closed
                    sync_error, aborted = exc, True
            end = _Edge(self.source, throttle_first=False)
            series = sampler.stop(end.t, bracket=end.t - start.t < (self.source.counter_period_s or 0.0))
            window.host_edges = {k: (start.host[k], end.host[k]) for k in start.host}
            window.result = self._finish(window, start, end, series, aborted)
        if sync_error is not None:
            raise sync_error

    def _finish(self, window: Window, start: _Edge, end: _Edge, series: Timeseries,
                aborted: bool) -> Measurement:
        src = self.source
        errors = [*start.errors, *([series.error] if series.error else []), *end.errors]
        base = self.baseline
        reads = CounterReads.from_list([
            (start.ta - start.t, start.tb - start.t, start.counters), *series.counter_reads,
            (end.ta - start.t, end.tb - start.t, end.counters)], len(src.devices()))
        inputs = WindowInputs(
            name=window.name, kind=src.kind, estimated=src.estimated, simulated=src.simulated,
            has_counter=src.has_counter, counter_period_s=src.counter_period_s,
            devices=src.devices(), duration_s=end.t - start.t, series=series,
            counters=(start.counters, end.counters), throttle=(start.throttle, end.throttle),
            baseline_w=base.power_w if base is not None else None,
            baseline_sd_w=base.sd_of_mean_w() if base is not None else None,
            baseline_drift_w=self.baseline_drift_w, reads=reads,
            input_tokens=window.input_tokens, output_tokens=window.output_tokens,
            errors=errors, aborted=aborted, overhead_j=_overhead(src, series),
        )
        result = build_measurement(inputs)
        index = len(self._records)
        self._records.append((result, series))
        window.listeners.append(lambda updated: self._update(index, series, updated))
        return result

    def _update(self, index: int, series: Timeseries, updated: Measurement) -> None:
        if index < len(self._records) and self._records[index][1] is series:  # not cleared since
            self._records[index] = (updated, series)

    # -- results ------------------------------------------------------------------------------
    @property
    def windows(self) -> list[Measurement]:
        """Every finished window, in order."""
        return [m for m, _ in self._records]

    def series(self, name: str) -> Timeseries:
        """The raw samples of the latest window called ``name``."""
        for m, s in reversed(self._records):
            if m.name == name:
                return s
        raise KeyError(f"no window named {name!r} (have {[m.name for m in self.windows]})")

    def timeseries(self, name: str) -> pd.DataFrame:
        """Long-format samples of the latest window called ``name``."""
        return self.series(name).to_frame()

    def write_timeseries(self, path: str | Path) -> Path:
        """Write every window's samples to one Parquet file (``window``, ``window_index`` columns)."""
        import pandas as pd

        frames = []
        for i, (m, s) in enumerate(self._records):
            df = s.to_frame(window=m.name)
            df.insert(1, "window_index", i)
            frames.append(df)
        empty = pd.DataFrame(columns=["window", "window_index", "t_s", "device", "power_w"])
        df = pd.concat(frames, ignore_index=True) if frames else empty
        return write_atomically(Path(path), lambda partial: df.to_parquet(partial, index=False))

    def clear(self) -> None:
        """Forget the finished windows."""
        self._records.clear()
