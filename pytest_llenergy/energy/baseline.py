"""Idle (baseline) power per device: measured, cached with a TTL, re-validated for drift.

The subtracted baseline is idle *in the state the workload runs in* (P0 on NVIDIA): an H200
idle for long sits at ~82 W in a deep P-state, but after any work it stays in P0 at ~120 W for
minutes. A reading taken in a deeper state (pstate > 0) is kept as ``deep_idle_w``; when a
``primer`` is given (:class:`~pytest_llenergy.energy.priming.GpuPrimer`: a tiny CUDA kernel) the
cache primes and re-measures, so the subtracted figure is P0 idle. Mean power comes from the energy
counter when there is one (counter joules / duration), else from the samples; the sd is always
from the samples. The cache persists through a :class:`BaselineStore` it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from pytest_llenergy.config.base import default_of
from pytest_llenergy.config.measurement import BaselineSettings
from pytest_llenergy.energy.baseline_precision import BaselinePrecision, block_means, standard_error
from pytest_llenergy.energy.baseline_reading import BaselineReading
from pytest_llenergy.energy.meter import EnergyMeter
from pytest_llenergy.energy.sources.base import EnergySource, SourceError

KEY_PREFIX = "llenergy/baseline/"


class BaselineStore(Protocol):
    """Where baselines persist between runs, one JSON-able entry per key (the plugin hands in one over
    pytest's ``config.cache``; :class:`MemoryStore` keeps them for this process only)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: dict[str, Any]) -> None: ...  # noqa: A003 - pytest's cache's own name


class Primer(Protocol):
    """Brings the device to the state workloads run in before a baseline (:class:`GpuPrimer`)."""

    def prime(self) -> None: ...


class MemoryStore:
    """A :class:`BaselineStore` in a dict (this process only)."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def set(self, key: str, value: dict[str, Any]) -> None:  # noqa: A003
        self.entries[key] = value


def _last(series: Any, name: str, j: int) -> float | None:
    values = series.aux.get(name)
    if values is None or values.shape[0] == 0 or not np.isfinite(values[-1, j]):
        return None
    return float(values[-1, j])


def measure_baseline(
    source: EnergySource,
    duration_s: float,
    hz: float = default_of(BaselineSettings, "sample_hz"),
    *,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
    series_if_uncorrected: bool = False,
) -> BaselineReading:
    """Idle power per device over ``duration_s`` (the caller keeps the device idle).

    Mean power is the (edge-corrected) energy / duration; with ``series_if_uncorrected`` a window
    whose counter could not be edge-corrected uses the mean of the power series instead (a raw
    counter over a short re-check is off by up to one ~100 ms step). ``se_w``: the standard error
    of the mean from 1 s block means (``baseline_precision``).
    """
    return _measure_once(source, duration_s, hz, sleep, now, series_if_uncorrected)[0]


def measure_adaptive(
    source: EnergySource,
    precision: BaselinePrecision,
    hz: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
) -> BaselineReading:
    """Idle power measured for ``precision.floor_s``, then on (up to ``precision.cap_s`` in all)
    until every device's mean is known to the precision the campaign's windows need."""
    reading, blocks = _measure_once(source, precision.floor_s, hz, sleep, now, False)
    while True:
        more = max((precision.seconds_more(blocks.get(k, np.empty(0)), w, reading.duration_s)
                    for k, w in reading.power_w.items()), default=0.0)
        if more <= 0:
            return reading
        extra, extra_blocks = _measure_once(source, more, hz, sleep, now, False)
        reading, blocks = _pooled(reading, extra), {k: np.concatenate([v, extra_blocks.get(k, np.empty(0))])
                                                    for k, v in blocks.items()}
        reading = replace(reading, se_w={k: se for k, v in blocks.items() if (se := standard_error(v)) is not None})


def _measure_once(source: EnergySource, duration_s: float, hz: float, sleep: Callable[[float], None],
                  now: Callable[[], float], series_if_uncorrected: bool,
                  ) -> tuple[BaselineReading, dict[str, np.ndarray]]:
    """One idle reading and its 1 s block means per device."""
    meter = EnergyMeter(source, sample_hz=hz)
    with meter.measure("baseline"):
        sleep(duration_s)
    m, series = meter.windows[-1], meter.series("baseline")
    errors = [f for f in m.flags if f.startswith("source_error:")]
    if errors:
        raise SourceError(f"baseline measurement failed: {errors[0][len('source_error:'):]}")
    power, sd, se, pstate, temp, deep, blocks, series_w = {}, {}, {}, {}, {}, {}, {}, {}
    inside = (series.t_s >= 0) & (series.t_s <= series.duration_s)
    for j, dev in enumerate(m.devices):
        if dev.mean_power_w is None:
            raise SourceError(f"baseline measurement got no data for {dev.device}")
        col = series.power_w[inside, j]
        power[dev.device] = dev.mean_power_w
        stepped = bool(getattr(source, "counter_period_s", None))
        if series_if_uncorrected and stepped and dev.edge_method == "counter" and col.size:
            power[dev.device] = float(np.mean(col))
        if col.size:
            series_w[dev.device] = float(np.mean(col))
        sd[dev.device] = float(np.std(col, ddof=1)) if col.size > 1 else 0.0
        blocks[dev.device] = block_means(series.t_s[inside], col, series.duration_s)
        if (error := standard_error(blocks[dev.device])) is not None:
            se[dev.device] = error
        ps = _last(series, "pstate", j)
        pstate[dev.device] = int(ps) if ps is not None else None
        temp[dev.device] = _last(series, "temperature_c", j)
        if pstate[dev.device]:
            deep[dev.device] = dev.mean_power_w
    reading = BaselineReading(power, sd, m.n_samples, pstate, temp, now(), m.duration_s, deep or None, se_w=se,
                              series_w=series_w)
    return reading, blocks


def _pooled(a: BaselineReading, b: BaselineReading) -> BaselineReading:
    """Two consecutive readings as one: duration-weighted means, pooled sd, the later state."""
    ta, tb = a.duration_s, b.duration_s
    total = (ta + tb) or 1.0

    def mean(x: dict[str, float], y: dict[str, float]) -> dict[str, float]:
        return {k: (x[k] * ta + y[k] * tb) / total for k in x if k in y}

    sd = {k: float(np.sqrt((a.sd_w[k] ** 2 * ta + b.sd_w[k] ** 2 * tb) / total)) for k in a.sd_w if k in b.sd_w}
    deep = {**(a.deep_idle_w or {}), **(b.deep_idle_w or {})}
    return replace(b, power_w=mean(a.power_w, b.power_w), sd_w=sd, n_samples=a.n_samples + b.n_samples,
                   duration_s=ta + tb, deep_idle_w=deep or None, se_w={}, series_w=mean(a.series_w, b.series_w))


#: relative idle-power drift above which a revalidation's short reading replaces the baseline
ADOPT_DRIFT = 0.005


class BaselineCache:
    """Baselines persisted in the :class:`BaselineStore` it is given (e.g. over pytest's ``config.cache``).

    One entry per device under ``llenergy/baseline/<uuid or label>``; every length and threshold
    comes from the campaign's ``measurement.baseline`` settings (``settings``). ``obtain`` returns
    a cached reading younger than ``ttl_s``, else measures adaptively (method ``fresh``;
    ``measure_adaptive``). ``maybe_revalidate`` checks for drift every ``revalidate_every``
    experiments, from the re-checks taken in the gaps since the last check (``recheck`` and
    ``note_idle`` keep them) or, when there were none, a ``revalidate_duration_s`` reading. Where
    the re-checks carry a power series, each item already subtracts the baseline :func:`tracked`
    to its own re-check, so a check only re-measures in full when idle moved beyond
    ``drift_threshold`` (a new state). Without them, a drift above ``ADOPT_DRIFT`` adopts the
    reading from then on (a GPU warming up over a campaign raised its idle power by 2 W = 1.9 % on
    an H200, 4 % of a host-bound window's adjusted energy), and one above ``drift_threshold``
    re-measures in full (both method ``revalidated``).
    """

    def __init__(
        self,
        store: BaselineStore,
        settings: BaselineSettings,
        *,
        campaign_ci_target: float | None = None,
        primer: Primer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.precision = BaselinePrecision.from_settings(settings, campaign_ci_target)
        self.primer = primer
        self._sleep, self._now = sleep, now
        self.current: BaselineReading | None = None
        #: idle readings taken since the last revalidation (re-checks), pooled by the next one
        self.idle_readings: list[BaselineReading] = []

    @staticmethod
    def key(device_key: str) -> str:
        return KEY_PREFIX + device_key

    def age(self, reading: BaselineReading) -> float:
        """Seconds since ``reading`` was measured."""
        return max(self._now() - reading.timestamp, 0.0)

    def obtain(self, source: EnergySource, refresh: bool = False) -> tuple[BaselineReading, str]:
        """The baseline to subtract and how it was obtained (``fresh`` or ``cached``)."""
        cached = None if refresh else self.cached(source)
        if cached is not None:
            self.current = cached
            return cached, "cached"
        return self._measure_and_store(source), "fresh"

    def cached(self, source: EnergySource) -> BaselineReading | None:
        """The stored reading :meth:`obtain` would reuse (younger than ``ttl_s``), else None."""
        reading = self._load(source)
        return reading if reading is not None and self.age(reading) <= self.settings.ttl_s else None

    def maybe_revalidate(
        self, source: EnergySource, experiments_done: int
    ) -> tuple[BaselineReading, str] | None:
        """Check for drift every ``revalidate_every`` experiments; None when no check was due.

        Returns ``(reading, "cached")`` when the check found no drift beyond ``ADOPT_DRIFT``
        (``drift_pct`` recorded), else ``(new reading, "revalidated")``.
        """
        every = self.settings.revalidate_every
        if not every or experiments_done <= 0 or experiments_done % every:
            return None
        old = self.current or self._load(source)
        if old is None:
            return self.obtain(source)
        pooled = self._pooled_idle()
        moved = series_drift(old, pooled) if pooled is not None else None
        if moved is not None:  # re-checks track idle item by item (``tracked``): only a new state re-measures
            if moved <= self.settings.drift_threshold:
                self.current = replace(old, drift_pct=moved * 100.0)
                return self.current, "cached"
            self.current = replace(self._measure_and_store(source), drift_pct=moved * 100.0)
            return self.current, "revalidated"
        quick = pooled or self._measure(source, self.settings.revalidate_duration_s)
        drift = _drift(old, quick)
        if drift is None or drift <= ADOPT_DRIFT:
            self.current = replace(old, drift_pct=None if drift is None else drift * 100.0)
            return self.current, "cached"
        if drift <= self.settings.drift_threshold:
            self._store(source, quick)
            self.current = replace(quick, drift_pct=drift * 100.0)
            return self.current, "revalidated"
        fresh = self._measure_and_store(source)
        self.current = replace(fresh, drift_pct=drift * 100.0)
        return self.current, "revalidated"

    def recheck(self, source: EnergySource, duration_s: float) -> BaselineReading:
        """A short idle reading between items (not stored, no priming): the baseline-drift evidence."""
        return measure_baseline(source, duration_s, self.settings.sample_hz, sleep=self._sleep, now=self._now,
                                series_if_uncorrected=True)

    def note_idle(self, reading: BaselineReading) -> None:
        """Keep an idle re-check (taken in a thermal gap) for the next revalidation (none: not kept)."""
        if self.settings.revalidate_every:
            self.idle_readings.append(reading)

    def _pooled_idle(self) -> BaselineReading | None:
        """The re-checks since the last revalidation as one reading (None when there were none)."""
        readings, self.idle_readings = self.idle_readings, []
        if not readings:
            return None
        pooled = readings[0]
        for reading in readings[1:]:
            pooled = _pooled(pooled, reading)
        if len(readings) < 2:
            return pooled
        means = {k: np.array([r.power_w[k] for r in readings if k in r.power_w]) for k in pooled.power_w}
        return replace(pooled, se_w={k: float(np.std(v, ddof=1) / np.sqrt(v.size)) for k, v in means.items() if v.size > 1})

    # -- internals ----------------------------------------------------------------------------
    def _measure(self, source: EnergySource, duration: float | None = None) -> BaselineReading:
        """A reading of ``duration`` seconds, or adaptive (None); re-measured in P0 after priming."""
        def once() -> BaselineReading:
            hz = self.settings.sample_hz
            if duration is None:
                return measure_adaptive(source, self.precision, hz, sleep=self._sleep, now=self._now)
            return measure_baseline(source, duration, hz, sleep=self._sleep, now=self._now)

        reading = once()
        if reading.deep_idle_w and self.primer is not None:
            self.primer.prime()  # bring the device to the state the workload runs in, then re-measure
            p0 = once()
            reading = replace(p0, deep_idle_w=p0.deep_idle_w or reading.deep_idle_w)
        return reading

    def _measure_and_store(self, source: EnergySource) -> BaselineReading:
        reading = self._measure(source)
        previous = self._load(source)
        if previous is not None and previous.deep_idle_w:
            merged = {**previous.deep_idle_w, **(reading.deep_idle_w or {})}
            reading = replace(reading, deep_idle_w=merged)
        self._store(source, reading)
        return reading

    def _store(self, source: EnergySource, reading: BaselineReading) -> None:
        for dev in source.devices():
            self.store.set(self.key(dev.key), reading.device_entry(dev.label))
        self.current = reading

    def _load(self, source: EnergySource) -> BaselineReading | None:
        entries = {}
        for dev in source.devices():
            entry = self.store.get(self.key(dev.key))
            if not isinstance(entry, dict) or not isinstance(entry.get("power_w"), (int, float)):
                return None
            if not isinstance(entry.get("timestamp"), (int, float)):
                return None
            entries[dev.label] = entry
        return BaselineReading.from_entries(entries) if entries else None


def bracket_drift_w(before: dict[str, float], after: dict[str, float] | None,
                    used: dict[str, float]) -> dict[str, float]:
    """Idle-power drift (W) per device for an item between two re-checks.

    The larger of how far idle moved between the re-checks before and after the item, and how far
    their mean sits from the subtracted baseline ``used``; with no reading after (the latest
    item), how far the reading before sits from ``used``.
    """
    out = {}
    for label, b in before.items():
        a = (after or {}).get(label)
        base = used.get(label, b)
        out[label] = abs(b - base) if a is None else max(abs(a - b), abs(0.5 * (a + b) - base))
    return out


def tracked(anchor: BaselineReading, recheck: BaselineReading) -> BaselineReading | None:
    """The idle power an item subtracts after a re-check: the anchor (a long reading, its level from
    the counter) moved by how far idle moved from the anchor's power series to the re-check's.

    Drift is read series to series: a 0.5 s counter reading sits 0.19 W below a long one on an H200
    (sd 0.195 W) while the series is offset from the counter by a steady ~0.1 W that cancels here
    (sd 0.11 W; docs/methodology.md). A device without both series, or a re-check in a deeper
    P-state than the anchor, keeps the anchor's level. None when no device moved.
    """
    moved = {k: recheck.series_w[k] - anchor.series_w[k] for k in anchor.power_w
             if k in anchor.series_w and k in recheck.series_w
             and not (recheck.pstate.get(k) and not anchor.pstate.get(k))}
    if not moved:
        return None
    power = {k: w + moved.get(k, 0.0) for k, w in anchor.power_w.items()}
    drift = max((abs(d) / anchor.power_w[k] for k, d in moved.items() if anchor.power_w[k] > 0), default=0.0)
    return replace(anchor, power_w=power, pstate={**anchor.pstate, **recheck.pstate},
                   temperature_c={**anchor.temperature_c, **recheck.temperature_c},
                   drift_pct=drift * 100.0, anchor_w=dict(anchor.power_w))


def series_drift(old: BaselineReading, new: BaselineReading) -> float | None:
    """Largest relative change of the power series' mean across devices (None: no series in both;
    deep-idle readings are skipped)."""
    changes = [abs(new.series_w[k] - w) / w for k, w in old.series_w.items()
               if k in new.series_w and w > 0 and not (new.pstate.get(k) and not old.pstate.get(k))]
    return max(changes) if changes else None


def _drift(old: BaselineReading, new: BaselineReading) -> float | None:
    """Largest relative change of idle power across devices; deep-idle readings are skipped."""
    changes = [
        abs(new.power_w[k] - w) / w
        for k, w in old.power_w.items()
        if k in new.power_w and w > 0 and not (new.pstate.get(k) and not old.pstate.get(k))
    ]
    return max(changes) if changes else None
