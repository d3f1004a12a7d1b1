"""The adaptive baseline: block-mean standard error, the stop rule, and revalidations from re-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_llenergy.config.measurement import BaselineSettings
from pytest_llenergy.energy import BaselineCache, BaselineReading, ReplaySource
from pytest_llenergy.energy.baseline import measure_adaptive
from pytest_llenergy.energy.baseline_precision import (
    BaselinePrecision,
    block_means,
    halfwidth_w,
    standard_error,
)

from .conftest import Store, window


def ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    x = np.empty(n)
    x[0] = rng.normal(0, sd)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + rng.normal(0, sd * math.sqrt(1 - phi * phi))
    return x


def test_block_means_give_the_standard_error_of_autocorrelated_samples() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(0, 20, 0.02)  # 20 s at 50 Hz, correlation time ~0.5 s
    series = [120 + ar1(rng, t.size, 0.96, 0.5) for _ in range(300)]
    true_se = float(np.std([s.mean() for s in series]))
    naive = np.median([s.std(ddof=1) / math.sqrt(s.size) for s in series])
    blocked = np.median([standard_error(block_means(t, s, 20.0)) for s in series])
    assert naive < true_se / 3  # sd / sqrt(n samples) overstates the precision several-fold
    assert blocked == pytest.approx(true_se, rel=0.35)
    assert block_means(t, series[0], 20.0).size == 20 and block_means(t, series[0], 19.5).size == 19  # whole blocks
    assert standard_error(np.array([1.0])) is None and math.isinf(halfwidth_w(np.array([1.0])))


def test_the_rule_scales_with_target_share_and_idle_power() -> None:
    rule = BaselinePrecision.from_settings(BaselineSettings())
    assert (rule.floor_s, rule.cap_s, rule.ci_target) == (5.0, 30.0, 0.03)
    assert rule.allowed_w(120.0) == pytest.approx(0.25 * 0.03 * 0.1 * 120.0)  # 0.09 W on an H200
    assert BaselinePrecision.from_settings(BaselineSettings(), campaign_ci_target=0.01).ci_target == 0.01
    assert BaselinePrecision.from_settings(BaselineSettings(ci_target=0.05), 0.01).ci_target == 0.05
    assert BaselinePrecision.from_settings(BaselineSettings(duration_s=2.0)).floor_s == 2.0  # cap below the floor
    quiet = np.full(5, 120.0) + np.array([0.01, -0.01, 0.02, -0.02, 0.0])
    assert rule.seconds_more(quiet, 120.0, 5.0) == 0.0
    noisy = 120.0 + np.array([1.0, -1.0, 0.8, -0.9, 0.2])
    more = rule.seconds_more(noisy, 120.0, 5.0)
    assert 1.0 <= more <= 25.0
    assert rule.seconds_more(noisy, 120.0, 29.8) == 0.0  # the cap


def trace(tmp_path, power) -> str:
    t = np.arange(0, 120, 0.02)
    path = tmp_path / "trace.csv"
    path.write_text("t_s,power_w\n" + "\n".join(f"{a:.3f},{b:.4f}" for a, b in zip(t, power(t))))
    return str(path)


def h200_idle(tmp_path) -> str:
    """The recorded H200 trace's P0 idle samples (50 Hz), repeated: a replay that stays idle."""
    import pandas as pd

    from pytest_llenergy.energy.sources.replay import DEFAULT_TRACE

    d = pd.read_csv(DEFAULT_TRACE)
    idle = d.power_w[(d.t_s >= 0) & (d.t_s < window("idle_start")["t_end_s"])].to_numpy()
    return trace(tmp_path, lambda t: np.resize(idle, t.size))


def test_recorded_h200_idle_stops_once_precise(tmp_path, fake_clock) -> None:
    def measure(**settings: float) -> BaselineReading:
        src = ReplaySource(h200_idle(tmp_path), clock=fake_clock, start_s=0.0, history_s=60)
        rule = BaselinePrecision.from_settings(BaselineSettings(**settings))
        return measure_adaptive(src, rule, 10.0, sleep=fake_clock.advance)

    r = measure()
    assert 6.0 <= r.duration_s <= 20.0  # shipped defaults: ~12 s instead of 30
    se = r.se_w["replay0"]
    assert 0 < se < 0.1 and r.sd_of_mean_w()["replay0"] == se
    rule = BaselinePrecision.from_settings(BaselineSettings())
    assert 2.0 * se <= rule.allowed_w(r.power_w["replay0"])  # the t half-width the rule compares
    assert se > r.sd_w["replay0"] / math.sqrt(r.n_samples)  # not n of 50 Hz samples
    assert measure(adjusted_fraction=0.3).duration_s == pytest.approx(5.0, abs=0.05)  # larger windows: the floor


def test_noisy_idle_is_measured_longer_and_a_tighter_target_longer_still(tmp_path, fake_clock) -> None:
    rng = np.random.default_rng(5)
    wander = 120 + np.repeat(rng.normal(0, 0.12, 120), 50)  # idle wandering 0.12 W second to second
    path = trace(tmp_path, lambda t: wander[: t.size])

    def duration(**settings: float) -> float:
        src = ReplaySource(path, clock=fake_clock, start_s=0.0, history_s=60)
        rule = BaselinePrecision.from_settings(BaselineSettings(**settings))
        return measure_adaptive(src, rule, 10.0, sleep=fake_clock.advance).duration_s

    default = duration()
    assert 5.5 < default < 30.0
    assert duration(ci_target=0.01) == pytest.approx(30.0, abs=0.05)  # precision not reached: the cap
    assert duration(min_duration_s=12.0) >= 12.0
    assert duration(ci_share=1.0) < default and duration(adjusted_fraction=0.3) < default


def test_revalidation_pools_the_rechecks_instead_of_measuring(tmp_path, fake_clock) -> None:
    src = ReplaySource(h200_idle(tmp_path), clock=fake_clock, start_s=0.0, history_s=60)
    store = Store()
    cache = BaselineCache(store.api, BaselineSettings(revalidate_every=2), sleep=fake_clock.advance)
    base, method = cache.obtain(src)
    assert method == "fresh" and 5.0 <= base.duration_s < 30.0
    idle = base.power_w["replay0"]
    for w in (1.02 * idle, 1.03 * idle):  # two gap tails, the GPU warmed up by 2-3 %
        cache.note_idle(BaselineReading({"replay0": w}, {"replay0": 0.4}, 10, duration_s=1.0))
    before = fake_clock()
    new, method = cache.maybe_revalidate(src, 2)
    assert fake_clock() == before  # nothing measured: the re-checks were the evidence
    assert method == "revalidated" and new.power_w["replay0"] == pytest.approx(1.025 * idle)
    assert new.se_w["replay0"] == pytest.approx(0.005 * idle, rel=0.01) and new.drift_pct == pytest.approx(2.5, abs=0.1)
    assert cache.idle_readings == []
    again, method = cache.maybe_revalidate(src, 4)  # no re-checks since: a revalidate_duration_s reading
    assert fake_clock() == pytest.approx(before + 5.0, abs=0.05) and method == "revalidated"
