"""The vectorised BCa engine agrees with scipy.stats.bootstrap (same resamples, same formula)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pytest_llenergy.results import bootstrap
from pytest_llenergy.results.bootstrap import (
    Strata,
    bca_mean_intervals,
    expanded_alpha,
    group_intervals,
)


def scipy_bca(x: np.ndarray, seed: int, n_resamples: int = 10_000) -> tuple[float, float]:
    res = stats.bootstrap((x,), np.mean, n_resamples=n_resamples, rng=np.random.default_rng(seed), method="BCa")
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [10, 15, 25])
def test_matches_scipy_for_one_sample(seed: int, n: int):
    x = np.random.default_rng(100 + seed).lognormal(3, 0.4, size=n)
    got = bca_mean_intervals(x[None, :], rng=np.random.default_rng(seed), expand=False)
    low, high = scipy_bca(x, seed)
    # Same resamples and formula; a resample that permutes the data ties with the mean, which we
    # count as a tie and scipy as <, = or > depending on rounding (rare for n >= 10).
    assert got.method[0] == "BCa"
    assert got.low[0] == pytest.approx(low, abs=1e-3 * (high - low))
    assert got.high[0] == pytest.approx(high, abs=1e-3 * (high - low))


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_scipy_exactly_when_ties_are_exact(seed: int):
    x = np.array([1.0, 2.0, 3.0, 6.0])  # small integers: every permutation's mean is exactly 3.0
    got = bca_mean_intervals(x[None, :], rng=np.random.default_rng(seed), expand=False)
    assert (got.low[0], got.high[0]) == scipy_bca(x, seed)


def test_expansion_is_scipy_at_the_expanded_level():
    x = np.random.default_rng(4).normal(10, 1, size=10)
    alpha = float(expanded_alpha(0.95, 10 / 9, 9))
    assert 0.0085 < alpha < 0.0087  # z = sqrt(10/9) * t_9(0.975) = 2.384
    got = bca_mean_intervals(x[None, :], rng=np.random.default_rng(2))
    ref = stats.bootstrap((x,), np.mean, n_resamples=10_000, rng=np.random.default_rng(2), method="BCa",
                          confidence_level=1 - 2 * alpha).confidence_interval
    width = ref.high - ref.low
    assert abs(got.low[0] - ref.low) < 1e-3 * width and abs(got.high[0] - ref.high) < 1e-3 * width
    plain = bca_mean_intervals(x[None, :], rng=np.random.default_rng(2), expand=False)
    assert got.low[0] < plain.low[0] and got.high[0] > plain.high[0]


def test_rows_of_a_batch_each_match_scipy_within_monte_carlo_error():
    x = np.random.default_rng(7).normal(50, 3, size=(6, 10))
    got = bca_mean_intervals(x, rng=np.random.default_rng(11), expand=False)
    for i in range(6):
        low, high = scipy_bca(x[i], 1000 + i)  # other resamples: Monte Carlo error only
        width = high - low
        assert abs(got.low[i] - low) < 0.05 * width and abs(got.high[i] - high) < 0.05 * width


def test_bracket_misses_fall_back_to_exact_selection():
    """A subsample that brackets nothing (all its values above every resample) forces the fallback."""
    dist = np.random.default_rng(3).gamma(2.0, size=(6, 2000))
    ranks = np.array([0, 49, 500, 1000, 1949, 1999])
    misleading = np.full((6, 400), dist.max() + 1.0)  # thresholds above everything: no row's bracket holds
    x0, x1 = bootstrap._order_statistics(dist, ranks, misleading)
    exact = np.sort(dist, axis=1)
    rows = np.arange(6)
    np.testing.assert_array_equal(x0, exact[rows, ranks])
    np.testing.assert_array_equal(x1, exact[rows, np.minimum(ranks + 1, 1999)])


def test_bracketed_rows_match_exact_selection():
    """A true sorted subsample brackets each rank: the counted band gives the exact order statistics."""
    rng = np.random.default_rng(4)
    dist = rng.gamma(2.0, size=(6, 2000))
    ranks = np.array([0, 49, 500, 1000, 1949, 1999])
    sub = np.sort(dist[:, rng.choice(2000, 400, replace=False)], axis=1)
    x0, x1 = bootstrap._order_statistics(dist, ranks, sub)
    exact = np.sort(dist, axis=1)
    rows = np.arange(6)
    np.testing.assert_array_equal(x0, exact[rows, ranks])
    np.testing.assert_array_equal(x1, exact[rows, np.minimum(ranks + 1, 1999)])


def test_constant_rows_and_tiny_samples():
    x = np.array([[5.0, 5.0, 5.0], [1.0, 2.0, 3.0], [1.0, 2.0, 2.0]])
    got = bca_mean_intervals(x, rng=np.random.default_rng(0), expand=False)
    assert list(got.method) == ["constant", "BCa", "BCa"]
    assert (got.low[0], got.high[0]) == (5.0, 5.0)
    assert (got.low[1], got.high[1]) == scipy_bca(x[1], 0)
    assert (got.low[2], got.high[2]) == scipy_bca(x[2], 0)


@pytest.mark.slow
def test_large_samples_use_bounded_slices(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(bootstrap, "_MAX_WEIGHTS", 50_000)  # force slicing for n = 2,000
    x = np.random.default_rng(9).exponential(size=(3, 2000))
    first = bca_mean_intervals(x, rng=np.random.default_rng(1), expand=False)
    again = bca_mean_intervals(x, rng=np.random.default_rng(1), expand=False)
    np.testing.assert_array_equal(first.low, again.low)
    for i in range(3):
        low, high = scipy_bca(x[i], 50 + i)
        assert abs(first.low[i] - low) < 0.05 * (high - low) and abs(first.high[i] - high) < 0.05 * (high - low)


def test_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 2"):
        bca_mean_intervals(np.ones((2, 1)), rng=rng)
    with pytest.raises(ValueError, match="finite"):
        bca_mean_intervals(np.array([[1.0, np.nan]]), rng=rng)
    with pytest.raises(ValueError, match="confidence"):
        bca_mean_intervals(np.array([[1.0, 2.0]]), rng=rng, confidence=1.5)


def test_stratified_group_interval_matches_scipy_multi_sample():
    rng = np.random.default_rng(21)
    samples = [rng.normal(10, 1, 6), rng.normal(30, 2, 6), rng.normal(20, 4, 9)]
    total = sum(s.size for s in samples)
    weights = [s.size / total for s in samples]

    def statistic(*xs, axis=-1):
        return sum(w * np.mean(x, axis=axis) for w, x in zip(weights, xs))

    ref = stats.bootstrap(samples, statistic, n_resamples=20_000, rng=np.random.default_rng(0), method="BCa")
    sink = np.zeros((1, 20_000))
    for k, rows in enumerate([[0, 1], [2]]):  # one call per sample size (6, then 9)
        data = np.array([samples[r] for r in rows])
        strata = Strata(sink, np.zeros(len(rows), dtype=int), np.array([weights[r] for r in rows]), np.array(rows))
        bca_mean_intervals(data, n_resamples=20_000, rng=np.random.default_rng(k), strata=strata, expand=False)
    centred = [s - s.mean() for s in samples]
    u = [w * c for w, c in zip(weights, centred)]
    accel = sum((x**3).sum() / x.size**3 for x in u) / (6 * sum((x**2).sum() / x.size**2 for x in u) ** 1.5)
    mean = statistic(*samples)
    got = group_intervals(sink, np.array([mean]), np.array([accel]), np.array([1.0]), alpha=np.array([0.025]))
    low, high = ref.confidence_interval
    assert abs(got.low[0] - low) < 0.03 * (high - low) and abs(got.high[0] - high) < 0.03 * (high - low)


def test_resample_slices_tile_the_resamples_exactly(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(bootstrap, "_MAX_WEIGHTS", 70)  # n = 10: 7 resamples per slice
    counts = bootstrap._ResampleCounts(10, 30, np.random.default_rng(0))
    slices = list(counts)
    assert [start for start, _ in slices] == [0, 7, 14, 21, 28]
    assert [c.shape for _, c in slices] == [(10, 7)] * 4 + [(10, 2)]
    assert all((c.sum(axis=0) == 10).all() for _, c in slices)  # every resample draws n values
    again = list(counts)
    assert all((a[1] == b[1]).all() for a, b in zip(slices, again))  # drawn again identically per chunk of rows


def test_strata_rotate_each_rows_resamples_and_skip_ungrouped_rows():
    sink = np.zeros((2, 5))
    strata = Strata(sink, group=np.array([-1, 0, 1]), weight=np.array([9.0, 0.5, 2.0]), offset=np.array([0, 2, 7]))
    dist = np.array([[100.0] * 5, [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    strata.add(np.array([0, 1, 2]), dist)
    np.testing.assert_array_equal(sink[0], 0.5 * np.array([3.0, 4.0, 5.0, 1.0, 2.0]))
    np.testing.assert_array_equal(sink[1], 2.0 * np.array([3.0, 4.0, 5.0, 1.0, 2.0]))  # offset 7 = 2 (mod 5)
    strata.add(np.array([1]), dist[1:2])
    np.testing.assert_array_equal(sink[0], np.array([3.0, 4.0, 5.0, 1.0, 2.0]))  # accumulates


def test_a_one_stratum_group_is_that_samples_interval():
    x = np.random.default_rng(6).lognormal(2.0, 0.5, size=12)
    sink = np.zeros((1, 10_000))
    strata = Strata(sink, np.array([0]), np.array([1.0]), np.array([0]))
    one = bca_mean_intervals(x[None, :], rng=np.random.default_rng(3), strata=strata, expand=False)
    centred = x - x.mean()
    got = group_intervals(sink, np.array([x.mean()]), bootstrap._acceleration(centred[None, :]),
                          np.array([np.abs(centred).max()]), alpha=np.array([0.025]))
    assert list(got.method) == ["BCa"] and got.method.dtype.kind == "U"
    assert got.low[0] == pytest.approx(one.low[0], rel=1e-12) and got.high[0] == pytest.approx(one.high[0], rel=1e-12)


def test_constant_groups_are_points_beside_resampled_ones():
    sink = np.vstack([np.zeros(100), np.random.default_rng(1).normal(0, 1, 100)])
    got = group_intervals(sink, np.array([3.0, 5.0]), np.zeros(2), np.array([0.0, 2.0]), alpha=np.full(2, 0.025))
    assert list(got.method) == ["constant", "BCa"] and (got.low[0], got.high[0]) == (3.0, 3.0)
    assert got.low[1] < 5.0 < got.high[1]
    failed = group_intervals(np.ones((1, 100)), np.array([1.0]), np.zeros(1), np.array([1.0]), alpha=np.full(1, 0.025))
    assert list(failed.method) == ["percentile"]  # every resample above the statistic: BCa undefined


def test_input_checks_and_their_bounds():
    rng = np.random.default_rng(0)
    x = np.array([[1.0, 2.0, 4.0]])
    for bad, message in (({"confidence": 0.0}, "confidence must be in (0, 1), got 0.0"),
                         ({"confidence": 1.0}, "confidence must be in (0, 1), got 1.0"),
                         ({"n_resamples": 1}, "n_resamples must be at least 2, got 1")):
        with pytest.raises(ValueError) as info:
            bca_mean_intervals(x, rng=rng, **bad)
        assert str(info.value) == message
    assert bca_mean_intervals(x, rng=rng, n_resamples=2).low.shape == (1,)
    with pytest.raises(ValueError) as info:
        bca_mean_intervals(np.ones(3), rng=rng)
    assert str(info.value) == "samples must be a 2-D array with at least 2 values per row"
    with pytest.raises(ValueError) as info:
        bca_mean_intervals(np.array([[1.0, np.inf]]), rng=rng)
    assert str(info.value) == "samples must be finite (drop NaN before calling)"


def test_more_than_65535_resamples_count_without_overflow():
    x = np.random.default_rng(2).normal(10, 1, size=10)
    got = bca_mean_intervals(x[None, :], n_resamples=70_000, rng=np.random.default_rng(5), expand=False)
    low, high = scipy_bca(x, 5, n_resamples=70_000)
    assert got.low[0] == pytest.approx(low, abs=1e-3 * (high - low))
    assert got.high[0] == pytest.approx(high, abs=1e-3 * (high - low))


def test_rows_where_bca_fails_get_the_percentile_interval():
    x = np.array([[0.0] * 10 + [1.0], [1.0, 2.0, 4.0, 3.0, 5.0, 2.0, 6.0, 1.0, 2.5, 3.5, 4.5]])
    seed = next(s for s in range(500)
                if bca_mean_intervals(x, n_resamples=2, rng=np.random.default_rng(s)).method[0] == "percentile")
    got = bca_mean_intervals(x, n_resamples=2, rng=np.random.default_rng(seed))
    assert got.method[0] == "percentile" and np.isfinite([got.low[0], got.high[0]]).all()
    assert got.low[0] <= got.high[0]
