"""Baseline measurement and the TTL / drift cache."""

from __future__ import annotations

import types
from dataclasses import replace

import numpy as np
import pytest

from pytest_llenergy.config.measurement import BaselineSettings
from pytest_llenergy.energy import (
    BaselineCache,
    BaselineReading,
    NvmlSource,
    ReplaySource,
    measure_baseline,
)
from pytest_llenergy.energy.baseline import MemoryStore
from pytest_llenergy.energy.sources import SourceError
from pytest_llenergy.results.schema import BaselineInfo

from .conftest import ScriptedSource, Store, exact_integral, window
from .fake_pynvml import FakeGpu


def idle_replay(fake_clock, scale: float = 1.0) -> ReplaySource:
    return ReplaySource(clock=fake_clock, start_s=window("idle_start")["t_start_s"],
                        history_s=60, scale=scale)


def test_measure_baseline_on_replayed_idle(fake_clock) -> None:
    src = idle_replay(fake_clock)
    r = measure_baseline(src, duration_s=5.0, sleep=fake_clock.advance, now=lambda: 1234.0)
    assert r.power_w["replay0"] == pytest.approx(exact_integral(0.0, 5.0) / 5.0, rel=1e-6)
    assert 115 < r.power_w["replay0"] < 130 and 0 < r.sd_w["replay0"] < 10
    assert r.n_samples == pytest.approx(250, abs=2) and r.duration_s == pytest.approx(5.0)
    assert r.timestamp == 1234.0 and r.pstate == {"replay0": None} and r.deep_idle_w is None


def test_baseline_sd_is_the_sample_sd_of_the_idle_series(fake_clock, monkeypatch) -> None:
    """The idle power's spread is the sample standard deviation (ddof = 1) of the window's series:
    the baseline's uncertainty (sd / sqrt(n)) and the drift checks rest on it."""
    from pytest_llenergy.energy import baseline as baseline_module

    meters = []

    class Recording(baseline_module.EnergyMeter):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            meters.append(self)

    monkeypatch.setattr(baseline_module, "EnergyMeter", Recording)
    r = measure_baseline(idle_replay(fake_clock), duration_s=0.2, sleep=fake_clock.advance)
    series = meters[0].series("baseline")
    col = series.power_w[(series.t_s >= 0) & (series.t_s <= series.duration_s), 0]
    assert 5 <= col.size <= 20 and np.std(col, ddof=1) != pytest.approx(np.std(col), rel=1e-3)
    assert r.sd_w["replay0"] == pytest.approx(float(np.std(col, ddof=1)), rel=1e-12)


def test_measure_baseline_records_pstate_temperature_and_deep_idle(install_nvml, fake_clock) -> None:
    install_nvml([FakeGpu(0, power=82.0, pstate=8, temperature_c=31), FakeGpu(1, power=120.0)],
                 clock=fake_clock, samples=False)
    r = measure_baseline(NvmlSource(clock=fake_clock), duration_s=2.0, sleep=fake_clock.advance)
    assert r.power_w == pytest.approx({"gpu0": 82.0, "gpu1": 120.0})
    assert r.pstate == {"gpu0": 8, "gpu1": 0} and r.temperature_c["gpu0"] == 31.0
    assert r.deep_idle_w == pytest.approx({"gpu0": 82.0})


def test_measure_baseline_raises_on_source_error() -> None:
    src = ScriptedSource(lambda t: [100.0], fail_after=0.0)
    with pytest.raises(SourceError, match="baseline measurement failed"):
        measure_baseline(src, duration_s=0.05)


def test_cache_fresh_then_cached_then_expired(fake_clock) -> None:
    store, now = Store(), [1000.0]
    cache = BaselineCache(store.api, BaselineSettings(ttl_s=600, duration_s=3.0),
                          sleep=fake_clock.advance, now=lambda: now[0])
    src = idle_replay(fake_clock)
    r1, method = cache.obtain(src)
    assert method == "fresh" and list(store) == [f"llenergy/baseline/{src.devices()[0].uuid}"]
    now[0] += 300
    r2, method = cache.obtain(idle_replay(fake_clock))
    assert method == "cached" and r2.power_w == pytest.approx(r1.power_w)
    assert cache.age(r2) == pytest.approx(300)
    info = r2.to_info(method, cache.age(r2))
    assert BaselineInfo.model_validate(info).method == "cached"
    assert set(info) == set(BaselineInfo.model_fields)
    now[0] += 301  # past the TTL
    _, method = cache.obtain(src)
    assert method == "fresh"
    _, method = cache.obtain(src, refresh=True)
    assert method == "fresh"


def test_cache_ignores_malformed_entries(fake_clock) -> None:
    src = idle_replay(fake_clock)
    store = MemoryStore()
    store.set(BaselineCache.key(src.devices()[0].uuid), {"power_w": "oops"})
    cache = BaselineCache(store, BaselineSettings(duration_s=1.0), sleep=fake_clock.advance)
    assert cache.obtain(src)[1] == "fresh"


def test_revalidation_every_n_and_drift(fake_clock) -> None:
    store = Store()
    settings = BaselineSettings(revalidate_every=3, revalidate_duration_s=1.0, drift_threshold=0.10, duration_s=3.0)
    kw = dict(settings=settings, sleep=fake_clock.advance)
    cache = BaselineCache(store.api, **kw)
    src = idle_replay(fake_clock)
    base, _ = cache.obtain(src)
    assert cache.maybe_revalidate(src, 0) is None and cache.maybe_revalidate(src, 2) is None
    same, method = cache.maybe_revalidate(src, 3)
    assert method == "cached" and same.power_w == base.power_w and same.drift_pct < 10
    hot = idle_replay(fake_clock, scale=1.3)  # idle power 30 % higher than cached
    hot_cache = BaselineCache(store.api, **kw)
    hot_cache.current = BaselineReading(power_w={"replay0": base.power_w["replay0"]}, timestamp=0)
    new, method = hot_cache.maybe_revalidate(hot, 6)
    assert method == "revalidated" and new.drift_pct == pytest.approx(30, abs=3)
    assert new.power_w["replay0"] == pytest.approx(1.3 * base.power_w["replay0"], rel=0.03)
    assert new.duration_s == pytest.approx(3.0)
    assert BaselineInfo.model_validate(new.to_info(method, 0.0)).drift_pct == new.drift_pct


def test_small_drift_is_adopted_from_the_short_reading(fake_clock) -> None:
    store = Store()
    settings = BaselineSettings(revalidate_every=1, revalidate_duration_s=1.0, drift_threshold=0.10, duration_s=3.0)
    kw = dict(settings=settings, sleep=fake_clock.advance)
    cache = BaselineCache(store.api, **kw)
    base, _ = cache.obtain(idle_replay(fake_clock))
    warm = idle_replay(fake_clock, scale=1.02)  # the GPU warmed up: idle 2 % higher, below the threshold
    new, method = cache.maybe_revalidate(warm, 1)
    assert method == "revalidated" and new.drift_pct == pytest.approx(2, abs=0.5)
    assert new.power_w["replay0"] == pytest.approx(1.02 * base.power_w["replay0"], rel=0.005)
    assert new.duration_s == pytest.approx(1.0)  # the short reading, not a full re-measure
    again, method = BaselineCache(store.api, **kw).obtain(warm)
    assert method == "cached" and again.power_w == pytest.approx(new.power_w)  # stored for later items


def test_prime_gets_a_p0_baseline_and_keeps_deep_idle(install_nvml, fake_clock) -> None:
    fake = install_nvml([FakeGpu(0, power=82.0, pstate=8)], clock=fake_clock, samples=False)

    def prime() -> None:  # what a tiny CUDA kernel does to an idle H200
        fake.gpus[0].pstate, fake.gpus[0].power = 0, 120.0

    store = Store()
    cache = BaselineCache(store.api, BaselineSettings(duration_s=2.0), primer=types.SimpleNamespace(prime=prime), sleep=fake_clock.advance,
                          now=lambda: 55.0)
    r, method = cache.obtain(NvmlSource(clock=fake_clock))
    assert method == "fresh" and r.pstate == {"gpu0": 0}
    assert r.duration_s == pytest.approx(2.0) and r.timestamp == 55.0  # the P0 re-measure: same length, same clock
    assert r.power_w["gpu0"] == pytest.approx(120.0, rel=0.06)  # first 100 ms still at 82 W
    assert r.deep_idle_w == pytest.approx({"gpu0": 82.0})
    r2, method = cache.obtain(NvmlSource(clock=fake_clock))
    assert method == "cached" and r2.deep_idle_w == pytest.approx({"gpu0": 82.0})
    # a later P0 re-measure keeps the deep-idle figure recorded earlier
    r3, _ = cache.obtain(NvmlSource(clock=fake_clock), refresh=True)
    assert r3.deep_idle_w == pytest.approx({"gpu0": 82.0}) and np.isclose(r3.power_w["gpu0"], 120.0)


def test_deep_idle_drift_is_not_counted(install_nvml, fake_clock) -> None:
    fake = install_nvml([FakeGpu(0, power=120.0, pstate=0)], clock=fake_clock, samples=False)
    store = Store()
    cache = BaselineCache(store.api, BaselineSettings(duration_s=2.0, revalidate_every=1),
                          sleep=fake_clock.advance)
    src = NvmlSource(clock=fake_clock)
    cache.obtain(src)
    fake.gpus[0].pstate, fake.gpus[0].power = 8, 82.0  # fell into deep idle between experiments
    reading, method = cache.maybe_revalidate(src, 1)
    assert method == "cached" and reading.power_w["gpu0"] == pytest.approx(120.0)


def test_bracket_drift_is_the_larger_of_the_move_and_the_offset_from_the_baseline() -> None:
    from pytest_llenergy.energy.baseline import bracket_drift_w

    # moved 2 W between the re-checks; their mean (101) sits 1 W from the baseline used (100): 2 W
    assert bracket_drift_w({"g0": 100.0}, {"g0": 102.0}, {"g0": 100.0}) == {"g0": 2.0}
    # steady re-checks 3 W above the baseline: the offset, 3 W
    assert bracket_drift_w({"g0": 103.0}, {"g0": 103.0}, {"g0": 100.0}) == {"g0": 3.0}
    # moved down 1 W, mean 3.5 W below the baseline: 3.5 W
    assert bracket_drift_w({"g0": 97.0}, {"g0": 96.0}, {"g0": 100.0}) == {"g0": 3.5}
    # no reading after (the latest item): the reading before against the baseline, either direction
    assert bracket_drift_w({"g0": 98.5, "g1": 52.0}, None, {"g0": 100.0, "g1": 50.0}) == {"g0": 1.5, "g1": 2.0}
    assert bracket_drift_w({"g0": 98.5}, {"g1": 1.0}, {"g0": 100.0}) == {"g0": 1.5}
    # a device without a baseline entry is measured against its own reading before
    assert bracket_drift_w({"g0": 98.0}, {"g0": 99.0}, {}) == {"g0": 1.0}
    assert bracket_drift_w({"g0": 98.0}, None, {}) == {"g0": 0.0}


def test_drift_is_the_largest_relative_change_skipping_deep_idle_and_zero() -> None:
    from pytest_llenergy.energy.baseline import _drift

    old = BaselineReading(power_w={"a": 100.0, "b": 50.0, "z": 0.0}, pstate={"a": 0, "b": 0})
    new = BaselineReading(power_w={"a": 103.0, "b": 49.0, "z": 5.0}, pstate={"a": 0, "b": 0})
    assert _drift(old, new) == pytest.approx(0.03)
    deep = BaselineReading(power_w={"a": 60.0, "b": 49.0}, pstate={"a": 8, "b": 0})  # a sank to deep idle: skipped
    assert _drift(old, deep) == pytest.approx(0.02)
    both_deep = BaselineReading(power_w={"a": 60.0}, pstate={"a": 8})
    assert _drift(BaselineReading(power_w={"a": 100.0}, pstate={"a": 8}), both_deep) == pytest.approx(0.4)
    assert _drift(old, BaselineReading(power_w={"c": 1.0})) is None


def test_defaults_and_the_recheck_reading(fake_clock) -> None:
    cache = BaselineCache(MemoryStore(), BaselineSettings())
    assert (cache.primer, cache.current) == (None, None)
    store = Store()
    cache = BaselineCache(store.api, BaselineSettings(), sleep=fake_clock.advance, now=lambda: 77.0)
    reading = cache.recheck(idle_replay(fake_clock), 2.0)
    assert reading.duration_s == pytest.approx(2.0) and reading.timestamp == 77.0
    assert reading.n_samples == pytest.approx(100, abs=2) and store == {}  # the replay's 50 Hz; never stored


def test_revalidation_is_due_only_every_n_experiments(fake_clock) -> None:
    store = Store()
    cache = BaselineCache(store.api, BaselineSettings(revalidate_every=0, duration_s=1.0), sleep=fake_clock.advance)
    assert cache.maybe_revalidate(idle_replay(fake_clock), 5) is None  # 0: never
    cache = BaselineCache(store.api, BaselineSettings(revalidate_every=2, revalidate_duration_s=0.5, duration_s=1.0),
                          sleep=fake_clock.advance)
    assert cache.maybe_revalidate(idle_replay(fake_clock), -2) is None
    first, method = cache.maybe_revalidate(idle_replay(fake_clock), 2)  # nothing cached yet: a full measurement
    assert method == "fresh" and first.duration_s == pytest.approx(1.0) and cache.current is first


@pytest.mark.parametrize(("scale", "method", "duration"), [
    (1.05, "revalidated", 1.0),  # past ADOPT_DRIFT (0.5 %), within the threshold (10 %): adopt the short reading
    (1.09, "revalidated", 1.0),
    (1.12, "revalidated", 3.0),  # beyond the threshold: a full re-measure
    (1.2, "revalidated", 3.0),
])
def test_revalidation_thresholds(fake_clock, scale, method, duration) -> None:
    store = Store()
    cache = BaselineCache(store.api, BaselineSettings(revalidate_every=1, revalidate_duration_s=1.0,
                          drift_threshold=0.10, duration_s=3.0), sleep=fake_clock.advance)
    base, _ = cache.obtain(idle_replay(fake_clock))
    cache.current = BaselineReading(power_w={"replay0": base.power_w["replay0"] / scale}, duration_s=3.0, timestamp=1.0)
    got, how = cache.maybe_revalidate(idle_replay(fake_clock), 1)
    assert how == method and got.duration_s == pytest.approx(duration)
    assert got.drift_pct == pytest.approx((scale - 1) * 100, abs=0.5)  # the replayed idle's own spread


def test_age_and_the_ttl_boundary(fake_clock) -> None:
    store, now = Store(), [1000.0]
    cache = BaselineCache(store.api, BaselineSettings(ttl_s=600, duration_s=1.0), sleep=fake_clock.advance,
                          now=lambda: now[0])
    first, _ = cache.obtain(idle_replay(fake_clock))
    assert cache.age(first) == 0.0 and cache.age(replace(first, timestamp=2000.0)) == 0.0  # never negative
    cache.current = None
    now[0] += 600  # exactly the TTL: still cached
    again, method = cache.obtain(idle_replay(fake_clock))
    assert method == "cached" and cache.current is again and cache.age(again) == 600.0


def test_a_default_baseline_lasts_thirty_seconds(fake_clock) -> None:
    assert measure_baseline(idle_replay(fake_clock), 30.0, sleep=fake_clock.advance).duration_s == pytest.approx(30.0)


def test_an_adopted_short_reading_records_its_drift_exactly(fake_clock) -> None:
    store = Store()
    cache = BaselineCache(store.api, BaselineSettings(revalidate_every=1, revalidate_duration_s=1.0, duration_s=3.0),
                          sleep=fake_clock.advance)
    base, _ = cache.obtain(idle_replay(fake_clock))
    old = base.power_w["replay0"] / 1.05
    cache.current = BaselineReading(power_w={"replay0": old}, duration_s=3.0, timestamp=1.0)
    got, how = cache.maybe_revalidate(idle_replay(fake_clock), 1)
    assert how == "revalidated" and got.drift_pct == pytest.approx(abs(got.power_w["replay0"] - old) / old * 100, rel=1e-12)



def test_drift_counts_a_small_idle_power() -> None:
    from pytest_llenergy.energy.baseline import _drift

    assert _drift(BaselineReading(power_w={"a": 0.5}), BaselineReading(power_w={"a": 1.0})) == pytest.approx(1.0)
    assert _drift(BaselineReading(power_w={"a": 0.0}), BaselineReading(power_w={"a": 1.0})) is None


def test_a_source_without_devices_has_no_cached_baseline() -> None:
    cache = BaselineCache(Store().api, BaselineSettings())
    assert cache._load(ScriptedSource(lambda t: [], n=0)) is None


@pytest.mark.parametrize(("ratio", "method", "duration"), [(1.003, "cached", 3.0), (1 / 1.2, "revalidated", 3.0)])
def test_the_recorded_drift_is_the_quick_readings_exactly(fake_clock, ratio, method, duration) -> None:
    from pytest_llenergy.energy.baseline import _drift

    from .conftest import FakeClock

    store = Store()
    cache = BaselineCache(store.api, BaselineSettings(revalidate_every=1, revalidate_duration_s=1.0, duration_s=3.0),
                          sleep=fake_clock.advance)
    cache.obtain(idle_replay(fake_clock))
    twin = FakeClock(fake_clock())  # the same replayed second, read again: what the quick check sees
    quick = measure_baseline(idle_replay(twin), 1.0, sleep=twin.advance)
    old = BaselineReading(power_w={"replay0": quick.power_w["replay0"] * ratio}, duration_s=3.0, timestamp=1.0)
    cache.current = old
    got, how = cache.maybe_revalidate(idle_replay(fake_clock), 1)
    assert how == method and got.duration_s == pytest.approx(duration)
    assert got.drift_pct == pytest.approx(_drift(old, quick) * 100, rel=1e-9)
