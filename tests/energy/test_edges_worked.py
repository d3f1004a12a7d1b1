"""Edge correction, step by step: worked examples of each function on hand-made reads and series
(a constant power and a counter whose update instants are known exactly)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_llenergy.energy.edges import (
    CounterReads,
    UpdateModel,
    brackets,
    corrected_energy,
    fit_updates,
    integrate,
    read_indices,
)

WATTS, PERIOD, PHASE = 100.0, 0.1, 0.05  # counter updates at 0.05 + 0.1 k


def counter(t: float, scale: float = 1.0, phase: float = PHASE) -> float:
    """The hand counter: the energy (J, x scale) up to the latest update at or before ``t``, plus 1000."""
    k = math.floor((t - phase) / PERIOD + 1e-9)
    return 1000.0 + scale * WATTS * PERIOD * (k + 1)


def burst(start: float, stop: float, scale: float = 1.0, phase: float = PHASE,
          step: float = 0.002) -> list[tuple[float, float, np.ndarray | None]]:
    """Reads 1 ms long every ``step`` s from ``start``: an update falls in the middle of a bracket."""
    out: list[tuple[float, float, np.ndarray | None]] = []
    for t in np.arange(start + 0.0005, stop, step):
        out.append((float(t), float(t) + 0.001, np.array([counter(float(t), scale, phase)])))
    return out


def flat_series(lo: float = -0.5, hi: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(lo, hi + 1e-9, 0.02)
    return t, np.full((t.size, 1), WATTS)


# -- CounterReads ------------------------------------------------------------------------------


def test_from_list_sorts_by_mid_point_drops_missing_values_and_makes_floats() -> None:
    # by start the order is a c b, by end b a c, by the middle a b c
    a, b, c = (0.0, 0.5, np.array([1, 10])), (0.3, 0.4, np.array([2, 20])), (0.1, 1.0, np.array([3, 30]))
    reads = CounterReads.from_list([c, b, (0.25, 0.26, None), a], devices=2)
    assert reads.t_lo.tolist() == [0.0, 0.3, 0.1] and reads.t_hi.tolist() == [0.5, 0.4, 1.0]
    assert reads.values.tolist() == [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]
    assert reads.values.dtype == np.float64
    assert reads.n == 3 and reads.mid.tolist() == pytest.approx([0.25, 0.35, 0.55])
    whole = CounterReads.from_list([(1, 2, [5]), (3, 4, [6])], devices=1)  # whole seconds: still floats
    assert whole.t_lo.dtype == whole.t_hi.dtype == whole.values.dtype == np.float64


def test_from_list_without_values_is_empty_with_the_device_columns() -> None:
    reads = CounterReads.from_list([(0.0, 0.1, None)], devices=3)
    assert reads.n == 0 and reads.values.shape == (0, 3) and reads.t_hi.size == 0


# -- integrate ---------------------------------------------------------------------------------


def test_integrate_is_the_trapezoid_of_the_interpolated_series() -> None:
    t, p = np.array([0.0, 1.0, 2.0]), np.array([0.0, 10.0, 10.0])
    assert integrate(t, p, 0.0, 2.0) == pytest.approx(15.0)
    assert integrate(t, p, 0.5, 1.5) == pytest.approx(3.75 + 5.0)  # the sample at 1.0 is a corner
    assert integrate(t, p, 1.5, 0.5) == pytest.approx(-8.75)  # signed
    assert integrate(t, p, -1.0, 3.0) == pytest.approx(0.0 + 15.0 + 10.0)  # constant beyond the ends
    assert integrate(t, p, 0.7, 0.7) == 0.0
    assert integrate(np.empty(0), np.empty(0), 0.0, 1.0) == 0.0


# -- brackets and the update model -------------------------------------------------------------


def test_brackets_keep_changes_at_most_half_a_period_wide() -> None:
    reads = CounterReads(np.array([0.0, 0.04, 0.3, 0.5, 0.52]), np.array([0.01, 0.05, 0.31, 0.51, 0.53]),
                         np.array([[1.0, 5.0], [2.0, 5.0], [2.0, 5.0], [2.0, 5.0], [3.0, 6.0]]))
    # 0.0 -> 0.05 is exactly half a period wide (kept), 0.5 -> 0.53 narrower; 0.04 -> 0.31 has no change
    assert brackets(reads, 0, PERIOD) == [(1, pytest.approx(0.025), pytest.approx(0.025)),
                                          (4, pytest.approx(0.515), pytest.approx(0.015))]
    assert brackets(reads, 1, PERIOD) == [(4, pytest.approx(0.515), pytest.approx(0.015))]
    assert brackets(reads, 0, 0.09) == [(4, pytest.approx(0.515), pytest.approx(0.015))]
    wide = CounterReads(np.array([0.0, 0.3]), np.array([0.01, 0.31]), np.array([[1.0], [2.0]]))
    assert brackets(wide, 0, PERIOD) == []


def test_fit_updates_numbers_brackets_and_keeps_the_nominal_period_over_short_spans() -> None:
    assert fit_updates([], PERIOD) is None
    found = [(1, 0.05, 0.001), (5, 0.35, 0.001), (9, 0.75, 0.001)]  # k = 0, 3, 7: under 8 periods
    model = fit_updates(found, 0.101)
    assert model is not None and model.k.tolist() == [0, 3, 7] and model.k.dtype.kind == "i"
    assert model.period == 0.101 and model.period_sd == pytest.approx(0.005 * 0.101)
    assert model.n_brackets == 3


def test_fit_updates_fits_the_period_once_the_brackets_span_eight_periods() -> None:
    found = [(1, 0.05, 0.001), (5, 0.35, 0.003), (9, 0.85, 0.001)]  # k = 0, 3, 8
    model = fit_updates(found, 0.101)  # the nominal period is outside what the brackets allow
    assert model is not None and model.k.tolist() == [0, 3, 8]
    # allowed: [max((0.3 - 0.004) / 3, (0.8 - 0.002) / 8, (0.5 - 0.004) / 5), min(...)] = 0.1 -+ 0.00025
    assert model.period == pytest.approx(0.1)
    assert model.period_sd == pytest.approx(0.0005 / math.sqrt(12.0))
    uneven = fit_updates([(1, 0.05, 0.004), (5, 0.352, 0.001), (9, 0.85, 0.001)], 0.101)
    assert uneven is not None  # allowed: [(0.8 - 0.005) / 8, (0.498 + 0.002) / 5]
    assert uneven.period == pytest.approx(0.5 * (0.795 / 8 + 0.1))
    assert uneven.period_sd == pytest.approx((0.1 - 0.795 / 8) / math.sqrt(12.0))
    inside = fit_updates(found, 0.1002)  # the nominal period when the brackets allow it
    assert inside is not None and inside.period == 0.1002
    # binary-exact brackets: the allowed range is [(1 - 2^-6) / 8, (1 + 2^-6) / 8]; either end is allowed
    h = 2.0**-7
    for nominal in ((1 - 2 * h) / 8, (1 + 2 * h) / 8):
        ends = fit_updates([(1, 0.0, h), (2, 1.0, h)], nominal)
        assert ends is not None and ends.k.tolist() == [0, 8] and ends.period == nominal


def test_fit_updates_refines_its_step_before_numbering_distant_brackets() -> None:
    # with the 4 % slow nominal period, 2.2 s / 0.104 rounds to 21 periods; the step measured over
    # the first 8 periods (0.1) gives the true 22
    found = [(1, 0.05, 0.001), (5, 0.85, 0.001), (9, 3.05, 0.001)]
    model = fit_updates(found, 0.104)
    assert model is not None and model.k.tolist() == [0, 8, 30] and model.period == pytest.approx(0.1)


def test_fit_updates_falls_back_to_the_slope_when_brackets_disagree() -> None:
    found = [(1, 0.0, 0.001), (5, 0.41, 0.003), (9, 0.8, 0.002)]  # the middle one is 10 ms off
    model = fit_updates(found, PERIOD)
    assert model is not None and model.k.tolist() == [0, 4, 8]
    assert model.period == pytest.approx(0.1)
    assert model.period_sd == pytest.approx(math.hypot(0.001, 0.002) / math.sqrt(3.0) / 8)


def test_period_ignores_two_brackets_of_the_same_update() -> None:
    found = [(1, 0.05, 0.001), (2, 0.052, 0.001), (9, 0.85, 0.001)]  # k = 0, 0, 8
    model = fit_updates(found, 0.0999)
    assert model is not None and model.k.tolist() == [0, 0, 8] and model.period == 0.0999
    # allowed: [(0.8 - 0.002) / 8, (0.798 + 0.002) / 8]
    assert model.period_sd == pytest.approx((0.1 - 0.09975) / math.sqrt(12.0))


def test_update_model_predicts_from_the_best_bracket() -> None:
    model = UpdateModel(0.1, 0.001, np.array([0, 10]), np.array([0.05, 1.06]), np.array([0.002, 0.004]))
    # k = 3: the narrow bracket 3 periods away beats the wide one 7 periods away (and vice versa at 9)
    assert model.instant(3) == pytest.approx(0.35)
    assert model.sd(3) == pytest.approx(math.hypot(0.002 / math.sqrt(3.0), 0.003))
    assert model.instant(9) == pytest.approx(0.96)
    assert model.sd(9) == pytest.approx(math.hypot(0.004 / math.sqrt(3.0), 0.001))
    assert model.instant(6) == pytest.approx(0.66)  # 4 periods from the wide one beat 6 from the narrow one
    assert model.instant(-2) == pytest.approx(-0.15)
    # an exact bracket against one 8 ms wide 4 periods nearer: the exact one (the bracket's
    # uniform sd is half / sqrt(3))
    exact = UpdateModel(0.1, 0.001, np.array([0, 10]), np.array([0.05, 1.06]), np.array([0.0, 0.008]))
    assert exact.instant(6) == pytest.approx(0.65) and exact.instant(7) == pytest.approx(0.76)
    # a narrow bracket 9 periods away beats a wide one 1 period away
    narrow = UpdateModel(0.1, 0.001, np.array([0, 10]), np.array([0.05, 1.06]), np.array([0.0001, 0.02]))
    assert narrow.instant(9) == pytest.approx(0.95)
    assert model.sd(-2) == pytest.approx(math.hypot(0.002 / math.sqrt(3.0), 0.002))


def test_index_at_counts_from_the_nearest_bracket_and_includes_the_instant_itself() -> None:
    model = UpdateModel(0.1, 0.001, np.array([0, 10]), np.array([0.05, 1.06]), np.array([0.002, 0.004]))
    assert model.index_at(0.35) == 3  # at an update instant (0.3 / 0.1 is 2.9999999999999996): that update
    assert model.index_at(1.055) == 9  # nearer the bracket at 1.06, which puts update 10 after it
    assert model.index_at(0.349) == 2
    assert model.index_at(1.0) == 9  # from the bracket at 1.06: 0.06 before it
    assert model.index_at(1.06) == 10 and model.index_at(1.2) == 11


# -- read indices ------------------------------------------------------------------------------


def test_read_indices_by_value_and_near_an_update_by_the_series() -> None:
    t, p = flat_series()
    # one bracket (k = 0 at 0.05); the fit's period is 0.7 % slow, so it places update 7 at 0.7549
    # while the counter moved at 0.75: a read at 0.752 is after it (the series decides), one at 0.5 is not near
    reads = CounterReads.from_list(burst(0.04, 0.06) + [(0.5, 0.501, np.array([counter(0.5)])),
                                                         (0.752, 0.753, np.array([counter(0.752)])),
                                                         (0.78, 0.781, np.array([counter(0.78)]))], 1)
    found = brackets(reads, 0, 0.1007)
    model = fit_updates(found, 0.1007)
    assert model is not None and model.k.tolist() == [0]
    idx = read_indices(reads, 0, model, found, t, p[:, 0])
    truth = [math.floor((m - PHASE) / PERIOD + 1e-9) for m in reads.t_lo]
    assert idx.tolist() == truth and idx[-3:].tolist() == [4, 7, 7] and idx.dtype.kind == "i"
    assert model.index_at(reads.mid[-2]) == 6  # the fit alone would be one off
    two = CounterReads(reads.t_lo, reads.t_hi, np.hstack([reads.values, 3.0 * reads.values]))
    assert read_indices(two, 1, model, brackets(two, 1, 0.1007), t, 3.0 * p[:, 0]).tolist() == truth


def test_read_indices_tie_the_value_before_a_bracket_to_the_update_before() -> None:
    # a bracket as the first two reads: the value before it is update -1, the later read is resolved
    reads = CounterReads.from_list([(0.0485, 0.0495, np.array([counter(0.0485)])),
                                    (0.0505, 0.0515, np.array([counter(0.0505)])),
                                    (0.752, 0.753, np.array([counter(0.752)]))], 1)
    found = brackets(reads, 0, PERIOD)
    model = fit_updates(found, PERIOD)
    assert model is not None
    t, p = flat_series()
    assert read_indices(reads, 0, model, found, t, p[:, 0]).tolist() == [-1, 0, 7]
    # the value before the bracket seen again just after update -1, where a 0.7 % fast fit puts
    # update -1 later (-0.0493 s) and a dead series cannot tell: the value decides
    late = CounterReads.from_list(burst(0.04, 0.06) + [(-0.0499, -0.0489, np.array([counter(-0.0499)]))], 1)
    found = brackets(late, 0, 0.0993)
    model = fit_updates(found, 0.0993)
    assert model is not None and model.index_at(late.mid[0]) == -2
    assert read_indices(late, 0, model, found, t, 0.0 * p[:, 0])[0] == -1


def test_read_indices_without_anchors_keep_the_fit() -> None:
    t, p = flat_series()
    reads = CounterReads.from_list(burst(0.04, 0.06) + [(0.752, 0.753, np.array([counter(0.752)]))], 1)
    model = UpdateModel(0.1007, 0.0005, np.array([0]), np.array([0.05]), np.array([0.0015]))
    idx = read_indices(reads, 0, model, [], t, p[:, 0])  # no brackets: no value is known
    assert idx[-1] == 6 and idx[0] == -1


# -- corrected_energy --------------------------------------------------------------------------


def window_reads(scale: float = 1.0, end: float = 1.2) -> CounterReads:
    return CounterReads.from_list(burst(0.0, 0.2, scale) + burst(end - 0.2, end, scale), 1)


def test_corrected_energy_worked_example() -> None:
    t, p = flat_series()
    r = corrected_energy(t, p, window_reads(scale=1.02), 0.1, 1.1, PERIOD)
    model = r.model
    assert r.method == "counter+series" and r.corrected and model is not None
    assert model.k.tolist() == [0, 1, 10, 11] and model.period == pytest.approx(0.1)
    # bulk: updates 1 (0.15) to 10 (1.05) on a counter reading 2 % high; head and tail: 5 J each
    assert r.energy_j == pytest.approx(9 * 10.2 + 5.0 + 5.0)
    assert r.raw_counter_j == pytest.approx(10 * 10.2)
    assert r.series_j == pytest.approx(100.0)
    assert r.ratio == pytest.approx(90.0 / 91.8)
    assert r.series_counter_j == pytest.approx((1.0 - 90.0 / 91.8) * 10.0)
    assert r.quantisation_j == pytest.approx(WATTS * math.hypot(model.sd(1), model.sd(10)))
    assert r.quantisation_j > 0.0
    assert r.cuts == pytest.approx((0.1, 0.15, 1.05, 1.1))


def test_corrected_energy_on_a_second_device_and_a_1d_series() -> None:
    t, p = flat_series()
    two = np.hstack([p, 2.0 * p])
    one = window_reads()
    reads = CounterReads(one.t_lo, one.t_hi, np.hstack([one.values, 3.0 * one.values]))
    r = corrected_energy(t, two, reads, 0.1, 1.1, PERIOD, j=1)
    assert r.method == "counter+series" and r.raw_counter_j == pytest.approx(300.0)
    assert r.energy_j == pytest.approx(9 * 30.0 + 10.0 + 10.0)
    flat = corrected_energy(t, p[:, 0], one, 0.1, 1.1, PERIOD)
    assert flat.energy_j == pytest.approx(100.0)


def test_corrected_energy_prefers_updates_inside_the_window() -> None:
    t, p = flat_series()
    # t0 = 0.148 is 2 ms before update 1 and 98 ms after update 0: the start is update 1 (head -0.2 J)
    r = corrected_energy(t, p, window_reads(scale=1.02), 0.148, 1.1, PERIOD)
    assert r.cuts == pytest.approx((0.148, 0.15, 1.05, 1.1))
    assert r.energy_j == pytest.approx(9 * 10.2 + 0.2 + 5.0)
    # t0 = 0.152: update 1 is 2 ms before (outside: one period's penalty), update 2 unread: update 1
    s = corrected_energy(t, p, window_reads(scale=1.02), 0.152, 1.1, PERIOD)
    assert s.cuts == pytest.approx((0.152, 0.15, 1.05, 1.1))
    assert s.energy_j == pytest.approx(9 * 10.2 - 0.2 + 5.0)
    # t1 = 1.152: the end is update 11 (1.15, inside); at 1.148 update 11 lies outside, 10 is kept
    e = corrected_energy(t, p, window_reads(scale=1.02), 0.1, 1.152, PERIOD)
    assert e.cuts == pytest.approx((0.1, 0.15, 1.15, 1.152))
    assert e.energy_j == pytest.approx(10 * 10.2 + 5.0 + 0.2)
    f = corrected_energy(t, p, window_reads(scale=1.02), 0.1, 1.148, PERIOD)
    assert f.cuts == pytest.approx((0.1, 0.15, 1.05, 1.148))
    assert f.energy_j == pytest.approx(9 * 10.2 + 5.0 + 9.8)


def test_the_start_prefers_a_farther_update_inside_to_a_nearer_one_before() -> None:
    t, p = flat_series()
    reads = CounterReads.from_list(burst(0.0, 0.3) + burst(1.0, 1.2), 1)
    # t0 = 0.16: update 1 (0.15) is 10 ms before it, update 2 (0.25) 90 ms after: update 2
    r = corrected_energy(t, p, reads, 0.16, 1.1, PERIOD)
    assert r.cuts == pytest.approx((0.16, 0.25, 1.05, 1.1)) and r.energy_j == pytest.approx(94.0)


def test_short_span_keeps_the_default_series_error_and_no_ratio() -> None:
    t, p = flat_series()
    reads = CounterReads.from_list(burst(0.0, 0.2, 1.02) + burst(0.5, 0.62, 1.02), 1)
    r = corrected_energy(t, p, reads, 0.1, 0.6, PERIOD)  # updates 1 (0.15) to 5 (0.55): 4 periods
    assert r.method == "counter+series" and r.ratio is None
    assert r.series_counter_j == pytest.approx(0.005 * (5.0 + 5.0))
    six = CounterReads.from_list(burst(0.0, 0.2, 1.02) + burst(0.7, 0.82, 1.02), 1)
    s = corrected_energy(t, p, six, 0.1, 0.8, PERIOD)  # 6 periods: the ratio is measured
    assert s.ratio == pytest.approx(60.0 / 61.2)
    assert s.series_counter_j == pytest.approx((1.0 - 60.0 / 61.2) * 10.0)


def test_corrected_energy_falls_back_where_it_must() -> None:
    t, p = flat_series()
    reads = window_reads()
    empty = CounterReads(np.empty(0), np.empty(0), np.empty((0, 1)))
    with pytest.raises(ValueError, match="^neither counter reads nor a power series cover the interval$"):
        corrected_energy(np.empty(0), np.empty((0, 1)), empty, 0.0, 1.0, PERIOD)
    s = corrected_energy(t, p, empty, 0.1, 1.1, PERIOD)
    assert (s.method, s.raw_counter_j, s.quantisation_j) == ("series", None, 0.0)
    assert s.energy_j == pytest.approx(100.0) and s.series_counter_j == pytest.approx(0.5)
    assert s.cuts == (0.1, 1.1) and s.model is None
    # under one period: the series, with the counter's raw delta kept
    short = corrected_energy(t, p, reads, 0.1, 0.19, PERIOD)
    assert short.method == "series" and short.energy_j == pytest.approx(9.0)
    assert short.raw_counter_j == pytest.approx(10.0) and short.series_j == pytest.approx(9.0)
    assert (short.quantisation_j, short.cuts) == (0.0, (0.1, 0.19))
    assert short.series_counter_j == pytest.approx(9.0 * 0.005)
    # no series: the raw counter with its quantisation, the model kept
    bare = corrected_energy(np.empty(0), np.empty((0, 1)), reads, 0.1, 1.1, PERIOD)
    assert (bare.method, bare.energy_j, bare.series_j) == ("counter", pytest.approx(100.0), None)
    assert bare.quantisation_j == pytest.approx(100.0 * 0.1 / math.sqrt(6.0))
    assert bare.model is not None and bare.series_counter_j == 0.0
    # reads too far apart to bracket an update: the raw counter, the series kept beside it
    apart = CounterReads(np.array([0.0, 1.0]), np.array([0.001, 1.001]), np.array([[0.0], [90.0]]))
    kept = corrected_energy(t, p, apart, 0.0, 1.0, PERIOD)
    assert (kept.method, kept.energy_j, kept.model) == ("counter", 90.0, None)
    assert kept.series_j == pytest.approx(100.0)
    # exactly one period is long enough to correct
    one = corrected_energy(t, p, reads, 0.1, 0.2, PERIOD)
    assert one.method == "counter+series" and one.energy_j == pytest.approx(10.0)


def test_a_counter_that_did_not_move_while_the_series_shows_power_gives_the_series() -> None:
    t, p = flat_series()
    still = CounterReads(np.array([0.0, 0.3]), np.array([0.001, 0.301]), np.array([[5.0], [5.0]]))
    r = corrected_energy(t, p, still, 0.0, 0.3, PERIOD)
    assert r.method == "series" and r.energy_j == pytest.approx(30.0) and r.raw_counter_j == 0.0
    faint = corrected_energy(t, 0.02 * p, still, 0.0, 0.3, PERIOD)  # 2 W: 0.6 J, under one joule
    assert faint.method == "series" and faint.energy_j == pytest.approx(0.6)
    idle = corrected_energy(t, 0.0 * p, still, 0.0, 0.3, PERIOD)  # no power either: the counter
    assert idle.method == "counter" and idle.energy_j == 0.0


def test_fine_grained_and_exact_counters_are_kept_as_read() -> None:
    t, p = flat_series()
    reads = CounterReads(np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([[0.0], [90.0]]))
    fine = corrected_energy(t, p, reads, 0.0, 1.0, 0.005)
    assert fine.method == "counter" and fine.energy_j == 90.0
    assert fine.quantisation_j == pytest.approx(90.0 * 0.005 / math.sqrt(6.0))
    assert fine.series_j == pytest.approx(100.0) and fine.series_counter_j == 0.0
    at_limit = corrected_energy(t, p, reads, 0.0, 1.0, 0.01)  # 10 ms is already a coarse counter
    assert at_limit.quantisation_j == pytest.approx(90.0 * 0.01 / math.sqrt(6.0))
    bracketed = CounterReads(np.array([0.0, 0.003, 1.0]), np.array([0.001, 0.004, 1.001]),
                             np.array([[0.0], [1.0], [90.0]]))
    assert corrected_energy(t, p, bracketed, 0.0, 1.0, 0.01).method == "counter+series"
    zero = corrected_energy(t, p, reads, 0.5, 0.5, 0.005)  # an empty interval: no mean power
    assert zero.quantisation_j == 0.0
    negative = corrected_energy(t, p, CounterReads(reads.t_lo, reads.t_hi, -reads.values), 0.0, 1.0, 0.005)
    assert negative.quantisation_j == pytest.approx(90.0 * 0.005 / math.sqrt(6.0))


def resolve_one(probe: tuple[float, float, float], p_scale: float) -> int:
    """The index read_indices gives a read ``probe`` (t_lo, t_hi, value) next to a bracket of update 0
    at 0.05 s, with an exact model (period 0.1, sd 1 ms per period from the bracket)."""
    model = UpdateModel(0.1, 0.001, np.array([0]), np.array([0.05]), np.array([0.0]))
    reads = CounterReads.from_list([(0.0485, 0.0495, np.array([1000.0])), (0.0505, 0.0515, np.array([1010.0])),
                                    (probe[0], probe[1], np.array([probe[2]]))], 1)
    t, p = flat_series()
    return int(read_indices(reads, 0, model, [(1, 0.05, 0.0015)], t, p_scale * p[:, 0])[-1])


def test_a_read_outside_the_margin_keeps_the_fit() -> None:
    # 25.2 ms after update 7 (0.75): the margin is 3 sd(8) + half the read = 24.5 ms, so the fit
    # decides (7); a dead series could not have told 6 from 7
    assert resolve_one((0.7747, 0.7757, 1080.0), 0.0) == 7


def test_a_read_inside_the_margin_is_placed_by_the_series() -> None:
    # 24 ms after the predicted update 7 (inside the 24.5 ms margin), the counter still reads
    # update 6 (it moved late): the series from update 0 (60 J at 100 W) says 6
    assert resolve_one((0.7735, 0.7745, 1070.0), 1.0) == 6


def test_a_one_watt_device_still_measures_the_series_counter_ratio() -> None:
    t, p = flat_series()
    one = window_reads()
    reads = CounterReads(one.t_lo, one.t_hi, 0.01 * one.values)  # 0.1 J per update
    r = corrected_energy(t, 0.01 * p, reads, 0.1, 1.1, PERIOD)
    assert r.method == "counter+series" and r.energy_j == pytest.approx(1.0)
    assert r.ratio == pytest.approx(1.0)  # the bulk is 0.9 J, under one joule but above zero
