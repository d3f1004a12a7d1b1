"""The tracked baseline: a long reading moved by the idle drift each re-check reads on the power
series, and revalidations that leave small drifts to it (``energy.baseline.tracked``)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_llenergy.config.measurement import BaselineSettings
from pytest_llenergy.energy import BaselineCache, BaselineReading, ReplaySource, measure_baseline
from pytest_llenergy.energy.baseline import _pooled, series_drift, tracked

from .conftest import Store, window
from .test_baseline_steps import inside_column, meters  # noqa: F401 - the fixture


def reading(counter: float, series: float | None, pstate: int = 0, duration: float = 0.5) -> BaselineReading:
    return BaselineReading({"g0": counter}, {"g0": 0.1}, 25, {"g0": pstate}, {"g0": 35.0}, 10.0, duration,
                           se_w={"g0": 0.02}, series_w={} if series is None else {"g0": series})


def test_the_anchor_moves_by_the_series_drift_not_by_the_counter_offset() -> None:
    anchor = reading(122.0, 122.1, duration=12.0)  # the long reading: counter level, series 0.1 W above it
    recheck = reading(121.0, 121.6)  # a short counter reading low by its own edge error; the series fell 0.5 W
    moved = tracked(anchor, recheck)
    assert moved is not None
    assert moved.power_w == {"g0": pytest.approx(121.5)}  # 122.0 - 0.5: neither the 121.0 nor the 121.6
    assert moved.anchor_w == {"g0": 122.0} and moved.drift_pct == pytest.approx(0.5 / 122.0 * 100)
    assert moved.se_w == anchor.se_w and moved.duration_s == 12.0  # the anchor's own uncertainty and length
    info = moved.to_info("tracked", 3.0)
    assert info["anchor_w"] == {"g0": 122.0} and info["power_w"] == {"g0": pytest.approx(121.5)}


@pytest.mark.parametrize(("anchor", "recheck"), [
    (reading(122.0, None, duration=12.0), reading(121.0, 121.6)),  # a baseline cached before series were kept
    (reading(122.0, 122.1, duration=12.0), reading(121.0, None)),
    (reading(122.0, 122.1, duration=12.0), reading(82.0, 82.1, pstate=8)),  # the re-check found deep idle
])
def test_nothing_to_track_without_both_series_in_the_same_state(anchor, recheck) -> None:
    assert tracked(anchor, recheck) is None


def test_series_drift_is_relative_and_skips_deep_idle() -> None:
    assert series_drift(reading(0, 100.0), reading(0, 103.0)) == pytest.approx(0.03)
    assert series_drift(reading(0, 100.0), reading(0, 80.0, pstate=8)) is None
    assert series_drift(reading(0, None), reading(0, 103.0)) is None


def test_pooling_and_the_cache_entry_keep_the_series() -> None:
    a, b = reading(100.0, 101.0, duration=1.0), reading(110.0, 112.0, duration=3.0)
    assert _pooled(a, b).series_w == {"g0": pytest.approx((101.0 + 112.0 * 3) / 4)}
    back = BaselineReading.from_entries({"g0": a.device_entry("g0")})
    assert back.series_w == {"g0": 101.0}
    old_entry = {k: v for k, v in a.device_entry("g0").items() if k != "series_w"}
    assert BaselineReading.from_entries({"g0": old_entry}).series_w == {}


def test_a_reading_keeps_its_series_mean(fake_clock, meters) -> None:  # noqa: F811
    source = ReplaySource(clock=fake_clock, start_s=window("idle_start")["t_start_s"], history_s=60,
                          counter_period_s=0.1, counter_phase_s=0.0437)
    r = measure_baseline(source, 2.0, sleep=fake_clock.advance)
    assert r.series_w == {"replay0": pytest.approx(float(np.mean(inside_column(meters[-1])[1])), rel=1e-12)}


@pytest.mark.parametrize(("series", "method", "remeasured"), [
    (128.75, "cached", False),  # 3 %: the items track it; no step adopted
    (137.5, "cached", False),  # exactly drift_threshold (10 %): still tracked
    (137.6, "revalidated", True),  # beyond it: a new state, measured in full
])
def test_revalidation_leaves_tracked_drift_to_the_items(fake_clock, series: float, method: str, remeasured: bool) -> None:
    cache = BaselineCache(Store().api, BaselineSettings(revalidate_every=1, drift_threshold=0.10, duration_s=1.0,
                          min_duration_s=1.0), sleep=fake_clock.advance)
    cache.current = reading(122.0, 125.0, duration=12.0)
    cache.note_idle(reading(121.0, series))
    source = ReplaySource(clock=fake_clock, start_s=window("idle_start")["t_start_s"], history_s=60)
    got, how = cache.maybe_revalidate(source, 1)
    assert how == method and got.drift_pct == pytest.approx((series - 125.0) / 125.0 * 100)
    if remeasured:  # the replay idles near 120 W: a fresh full reading, with its own series
        assert got.power_w["replay0"] != 122.0 and got.series_w
    else:
        assert got.power_w == {"g0": 122.0}  # the anchor, unchanged


@pytest.mark.parametrize(("series", "kept"), [(131.0, True), (137.5, True), (138.0, False)])
def test_an_item_tracks_only_within_the_drift_threshold(series: float, kept: bool) -> None:
    from types import SimpleNamespace

    from pytest_llenergy.plugin.measurement.recheck import trackable

    context = SimpleNamespace(settings=SimpleNamespace(baseline=BaselineSettings(drift_threshold=0.10)))
    moved = tracked(reading(125.0, 125.0, duration=12.0), reading(124.0, series))
    # 4.8 %: tracked; exactly 10 %: tracked; 10.4 %: not idle (a GPU still busy, or a new state)
    assert trackable(context, moved) == kept  # type: ignore[arg-type]
    assert not trackable(context, None)  # type: ignore[arg-type]
