"""Baseline, step by step: the series mean of an uncorrected stepped counter, the configured sampling
rate and clock reaching the meter, tiny windows, pooling two readings, the adaptive loop's stop rule
and the drift thresholds at exact equality."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest

from pytest_llenergy.config.measurement import BaselineSettings
from pytest_llenergy.energy import BaselineCache, BaselineReading, ReplaySource, measure_baseline
from pytest_llenergy.energy import baseline as baseline_module
from pytest_llenergy.energy.baseline import _last, _pooled, measure_adaptive
from pytest_llenergy.energy.baseline_precision import BaselinePrecision, block_means, standard_error

from .conftest import Store, window


def replay(fake_clock, period: float | None = None) -> ReplaySource:
    return ReplaySource(clock=fake_clock, start_s=window("idle_start")["t_start_s"], history_s=60,
                        counter_period_s=period, counter_phase_s=0.0437)


@pytest.fixture
def meters(monkeypatch) -> list:
    """Every EnergyMeter the baseline module makes, with the window it measured."""
    made: list = []

    class Recording(baseline_module.EnergyMeter):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(baseline_module, "EnergyMeter", Recording)
    return made


def inside_column(meter) -> tuple[np.ndarray, np.ndarray, float]:
    series = meter.series("baseline")
    keep = (series.t_s >= 0) & (series.t_s <= series.duration_s)
    return series.t_s[keep], series.power_w[keep, 0], series.duration_s


def test_an_uncorrected_stepped_counter_gives_way_to_the_series_mean_when_asked(fake_clock, meters) -> None:
    src = replay(fake_clock, period=0.1)  # the fake clock: no read brackets an update, no edge correction
    counter = measure_baseline(src, 0.55, sleep=fake_clock.advance)
    dev = meters[-1].windows[-1].devices[0]
    assert dev.edge_method == "counter" and counter.power_w["replay0"] == pytest.approx(dev.mean_power_w)
    series = measure_baseline(src, 0.55, sleep=fake_clock.advance, series_if_uncorrected=True)
    col = inside_column(meters[-1])[1]
    assert series.power_w["replay0"] == pytest.approx(float(np.mean(col)), rel=1e-12)
    # a 0.55 s window's raw counter is off by up to a step: the two differ by several watts here
    assert abs(series.power_w["replay0"] - counter.power_w["replay0"]) > 1.0


def test_an_exact_counter_is_kept_even_when_the_series_is_asked_for(fake_clock, meters) -> None:
    src = replay(fake_clock)  # counter_period_s None: an exact counter needs no series
    r = measure_baseline(src, 0.55, sleep=fake_clock.advance, series_if_uncorrected=True)
    dev = meters[-1].windows[-1].devices[0]
    assert r.power_w["replay0"] == pytest.approx(dev.mean_power_w, rel=1e-12)
    assert r.power_w["replay0"] != pytest.approx(float(np.mean(inside_column(meters[-1])[1])), rel=1e-4)


def test_recheck_uses_the_series_for_an_uncorrected_stepped_counter(fake_clock, meters) -> None:
    cache = BaselineCache(Store().api, BaselineSettings(sample_hz=7.0), sleep=fake_clock.advance,
                          now=lambda: 55.0)
    r = cache.recheck(replay(fake_clock, period=0.1), 0.55)
    assert r.power_w["replay0"] == pytest.approx(float(np.mean(inside_column(meters[-1])[1])), rel=1e-12)
    assert meters[-1].sample_hz == 7.0 and r.timestamp == 55.0


def test_the_adaptive_reading_keeps_the_counter(fake_clock, meters) -> None:
    precision = BaselinePrecision(0.55, 0.55, 0.05, 0.5, 0.5)  # floor = cap: one reading
    r = measure_adaptive(replay(fake_clock, period=0.1), precision, 9.0, sleep=fake_clock.advance)
    dev = meters[-1].windows[-1].devices[0]
    assert r.power_w["replay0"] == pytest.approx(dev.mean_power_w, rel=1e-12)
    assert meters[-1].sample_hz == 9.0


def test_the_sampling_rate_and_clock_reach_the_meter(fake_clock, meters) -> None:
    measure_baseline(replay(fake_clock), 0.2, 6.0, sleep=fake_clock.advance)
    assert meters[-1].sample_hz == 6.0
    cache = BaselineCache(Store().api, BaselineSettings(sample_hz=8.0, duration_s=1.0),
                          sleep=fake_clock.advance, now=lambda: 321.0)
    r = cache._measure(replay(fake_clock), 0.3)
    assert meters[-1].sample_hz == 8.0 and r.timestamp == 321.0 and r.duration_s == pytest.approx(0.3)


def test_a_window_of_one_or_two_samples(fake_clock, meters) -> None:
    one = measure_baseline(replay(fake_clock), 0.02, sleep=fake_clock.advance)
    assert inside_column(meters[-1])[1].size == 1 and one.sd_w["replay0"] == 0.0
    two = measure_baseline(replay(fake_clock), 0.04, sleep=fake_clock.advance)
    col = inside_column(meters[-1])[1]
    assert col.size == 2 and two.sd_w["replay0"] == pytest.approx(float(np.std(col, ddof=1)))
    assert two.sd_w["replay0"] > 0.0


def test_the_standard_error_is_kept_from_whole_blocks(fake_clock, meters) -> None:
    short = measure_baseline(replay(fake_clock), 0.55, sleep=fake_clock.advance)
    assert short.se_w == {}  # under two 1 s blocks: no standard error
    r = measure_baseline(replay(fake_clock), 3.0, sleep=fake_clock.advance)
    t, col, duration = inside_column(meters[-1])
    expected = standard_error(block_means(t, col, duration))
    assert expected is not None and r.se_w == {"replay0": pytest.approx(expected, rel=1e-12)}


def test_last_reads_the_final_finite_value() -> None:
    series = SimpleNamespace(aux={"pstate": np.array([[8.0, 0.0], [2.0, np.nan]]), "empty": np.empty((0, 2))})
    assert _last(series, "pstate", 0) == 2.0 and _last(series, "pstate", 1) is None
    assert _last(series, "empty", 0) is None and _last(series, "missing", 0) is None


def test_pooling_two_readings() -> None:
    a = BaselineReading({"g0": 100.0, "g1": 50.0}, {"g0": 2.0, "g1": 1.0}, 100, {"g0": 0}, {"g0": 30.0}, 10.0, 2.0,
                        {"g0": 80.0}, se_w={"g0": 0.1})
    b = BaselineReading({"g0": 130.0}, {"g0": 4.0}, 300, {"g0": 0}, {"g0": 33.0}, 20.0, 3.0, {"g2": 70.0},
                        se_w={"g0": 0.2})
    p = _pooled(a, b)
    assert p.power_w == {"g0": pytest.approx((100.0 * 2 + 130.0 * 3) / 5)}  # g1 only in one: dropped
    assert p.sd_w == {"g0": pytest.approx(math.sqrt((4.0 * 2 + 16.0 * 3) / 5))}
    assert (p.n_samples, p.duration_s, p.timestamp, p.temperature_c) == (400, 5.0, 20.0, {"g0": 33.0})
    assert p.deep_idle_w == {"g0": 80.0, "g2": 70.0} and p.se_w == {}
    plain = _pooled(replace_deep(a), replace_deep(b))
    assert plain.deep_idle_w is None and plain.se_w == {}


def replace_deep(r: BaselineReading) -> BaselineReading:
    from dataclasses import replace
    return replace(r, deep_idle_w=None)


@dataclass
class StepPrecision:
    """A stop rule that asks for ``asks`` more seconds in turn, recording what it was shown."""

    floor_s: float
    asks: list[float]
    seen: list[tuple[int, float]] = field(default_factory=list)

    def seconds_more(self, blocks: np.ndarray, idle_w: float, duration_s: float) -> float:
        self.seen.append((blocks.size, duration_s))
        return self.asks.pop(0) if self.asks else 0.0


def test_the_adaptive_loop_measures_what_the_rule_asks_even_under_a_second(fake_clock) -> None:
    rule = StepPrecision(2.0, [0.5, 1.0])
    r = measure_adaptive(replay(fake_clock), rule, 10.0, sleep=fake_clock.advance)  # type: ignore[arg-type]
    assert r.duration_s == pytest.approx(3.5)
    assert [(n, pytest.approx(d)) for n, d in rule.seen] == [(2, 2.0), (2, 2.5), (3, 3.5)]


def test_the_campaign_target_reaches_the_stop_rule() -> None:
    settings = BaselineSettings()
    cache = BaselineCache(Store().api, settings, campaign_ci_target=0.2)
    assert cache.precision == BaselinePrecision.from_settings(settings, 0.2)
    assert cache.precision != BaselinePrecision.from_settings(settings, None)


@pytest.mark.parametrize(("idle", "method", "adopted"), [
    (201.0, "cached", False),  # exactly ADOPT_DRIFT (0.5 %): kept
    (210.0, "revalidated", True),  # exactly the threshold (5 %): the re-check is adopted
])
def test_drift_exactly_at_each_threshold(fake_clock, idle: float, method: str, adopted: bool) -> None:
    store = Store()
    cache = BaselineCache(store.api, BaselineSettings(revalidate_every=1, drift_threshold=0.05,
                          duration_s=1.0), sleep=fake_clock.advance)
    cache.current = BaselineReading({"replay0": 200.0}, {"replay0": 1.0}, 50, {"replay0": 0}, duration_s=1.0)
    cache.note_idle(BaselineReading({"replay0": idle}, {"replay0": 1.0}, 50, {"replay0": 0}, duration_s=0.5))
    got, how = cache.maybe_revalidate(replay(fake_clock), 1)
    assert how == method and got.drift_pct == pytest.approx((idle - 200.0) / 2.0)
    assert got.power_w["replay0"] == (idle if adopted else 200.0)  # not re-measured (the replay idles at ~120 W)


def test_the_adaptive_loop_pools_the_counter_readings_of_a_stepped_source(fake_clock, meters) -> None:
    rule = StepPrecision(2.0, [1.0])
    r = measure_adaptive(replay(fake_clock, period=0.1), rule, 10.0, sleep=fake_clock.advance)  # type: ignore[arg-type]
    first, extra = (m.windows[-1].devices[0].mean_power_w for m in meters)
    assert r.duration_s == pytest.approx(3.0)
    assert r.power_w["replay0"] == pytest.approx((first * 2.0 + extra * 1.0) / 3.0, rel=1e-9)
