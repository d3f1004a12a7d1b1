"""The adaptive baseline's arithmetic at its edges: blocks, standard error, half-width, and the stop rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from pytest_llenergy.energy.baseline_precision import (
    BaselinePrecision,
    block_means,
    halfwidth_w,
    standard_error,
)


def rule(cap_s: float = 12.0, share: float = 1.0, target: float = 1.0, fraction: float = 1.0) -> BaselinePrecision:
    """With share, target and fraction 1 the allowed half-width is the idle power itself."""
    return BaselinePrecision(floor_s=2.0, cap_s=cap_s, ci_target=target, ci_share=share, adjusted_fraction=fraction)


def t95(dof: int) -> float:
    return float(student_t.ppf(0.975, dof))


class TestBlockMeans:
    def test_half_second_blocks_drop_nan_negative_times_and_samples_past_the_window(self) -> None:
        t = np.array([-0.1, 0.0, 0.2, 0.5, 0.7, 1.0, 1.2, 1.6, 2.1])
        p = np.array([500.0, 10.0, 20.0, 30.0, np.nan, 50.0, 60.0, 70.0, 900.0])
        # blocks of 0.5 s in [0, 2]: [0, .5) 10, 20 | [.5, 1) 30 | [1, 1.5) 50, 60 | [1.5, 2) 70
        assert block_means(t, p, 2.0, block_s=0.5).tolist() == [15.0, 30.0, 55.0, 70.0]

    def test_a_block_without_samples_is_dropped_and_one_sample_is_a_block(self) -> None:
        t = np.array([0.1, 0.9, 2.5])  # nothing in [1, 2)
        assert block_means(t, np.array([1.0, 3.0, 7.0]), 3.0).tolist() == [2.0, 7.0]

    def test_a_window_a_few_ms_short_keeps_its_last_block_a_partial_one_is_dropped(self) -> None:
        t, p = np.array([0.5, 1.5]), np.array([4.0, 8.0])
        assert block_means(t, p, 1.99).tolist() == [4.0, 8.0]
        assert block_means(t, p, 1.9).tolist() == [4.0]

    def test_under_one_whole_block_there_is_none(self) -> None:
        assert block_means(np.array([0.1, 0.4]), np.array([1.0, 2.0]), 0.9).size == 0
        assert block_means(np.array([5.0]), np.array([1.0]), 3.0).size == 0  # no sample inside


class TestSpread:
    def test_standard_error_of_two_blocks_uses_n_minus_one(self) -> None:
        # sd (ddof 1) of [10, 14] = 2 sqrt(2); / sqrt(2) = 2
        assert standard_error(np.array([10.0, 14.0])) == pytest.approx(2.0)
        assert standard_error(np.array([10.0])) is None and standard_error(np.empty(0)) is None

    def test_halfwidth_uses_t_with_blocks_minus_one_dof(self) -> None:
        blocks = np.array([10.0, 12.0, 14.0])  # sd 2, se 2 / sqrt(3)
        assert halfwidth_w(blocks) == pytest.approx(t95(2) * 2 / math.sqrt(3))
        assert halfwidth_w(np.array([10.0])) == math.inf

    def test_relative_shift_is_against_the_adjusted_power_of_the_smallest_windows(self) -> None:
        r = rule(fraction=0.25)
        assert r.relative_shift(1.0, 120.0) == pytest.approx(1.0 / 30.0)
        assert r.relative_shift(1.0, -120.0) == pytest.approx(1.0 / 30.0)
        assert r.relative_shift(1.0, 0.0) == math.inf
        assert rule(share=0.5, target=0.02, fraction=0.25).allowed_w(-120.0) == pytest.approx(0.3)


class TestSecondsMore:
    def test_the_cap_stops_it_when_under_half_a_block_is_left(self) -> None:
        wide = np.array([100.0, 200.0])
        assert rule().seconds_more(wide, 1.0, 11.6) == 0.0  # 0.4 s left
        assert rule().seconds_more(wide, 1.0, 11.5) == pytest.approx(0.5)  # exactly half a block: measure it
        assert rule().seconds_more(wide, 1.0, 10.5) == pytest.approx(1.5)

    def test_a_halfwidth_exactly_at_the_allowed_one_is_enough(self) -> None:
        blocks = np.array([10.0, 12.0, 14.0])
        hw = halfwidth_w(blocks)
        assert rule().seconds_more(blocks, hw, 3.0) == 0.0
        assert rule().seconds_more(blocks, hw * 0.999, 3.0) > 0.0

    @pytest.mark.parametrize("blocks, elapsed, expected", [
        (np.empty(0), 0.0, 2.0),  # two blocks before a spread exists
        (np.array([5.0]), 1.0, 1.0),
        (np.empty(0), 10.5, 1.5),  # but never past the cap
    ])
    def test_without_a_spread_it_asks_for_two_blocks(self, blocks: np.ndarray, elapsed: float, expected: float) -> None:
        assert rule().seconds_more(blocks, 1.0, elapsed) == pytest.approx(expected)

    @pytest.mark.parametrize("sd, allowed", [(1.0, 3.0), (4.0, 3.0), (4.0, 1.5), (1.0, 0.5), (4.0, 0.9)])
    def test_it_asks_for_the_fewest_blocks_whose_halfwidth_would_be_allowed(self, sd: float, allowed: float) -> None:
        blocks = np.array([10.0 - sd / math.sqrt(2), 10.0 + sd / math.sqrt(2)])  # two blocks, sd exactly `sd`
        assert np.std(blocks, ddof=1) == pytest.approx(sd)
        more = rule(cap_s=100.0).seconds_more(blocks, allowed, 2.0)
        n = 2 + round(more)
        assert more == round(more) and more >= 1
        assert t95(n - 1) * sd / math.sqrt(n) <= allowed  # enough
        assert t95(n - 2) * sd / math.sqrt(n - 1) > allowed  # and one block fewer would not be

    def test_what_the_cap_cannot_give_ends_at_the_cap(self) -> None:
        blocks = np.array([0.0, 100.0, 50.0])
        # the rule stops projecting at 12 blocks (the cap); 2.5 s elapsed leaves 9.5 s, the projection 9 blocks
        assert rule().seconds_more(blocks, 0.01, 2.5) == pytest.approx(9.0)
        assert rule().seconds_more(blocks, 0.01, 4.0) == pytest.approx(8.0)  # the time left
