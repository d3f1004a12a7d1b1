"""Phase split at its edges, worked by hand: token work, cut points and the interval algebra of
:mod:`.attribution`, the seconds, pools and uncertainty terms of :mod:`.phase_average`, and the fit of
:mod:`.phase_fit` on hand-made runs (a few samples whose phase and power are chosen, or a sensor that
averages a known piecewise-constant power over a window and a lag)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from pytest_llenergy.energy.attribution import (
    Shares,
    Span,
    attribute,
    cut_points,
    spread_other,
    subtract_segments,
    token_work,
    union_segments,
)
from pytest_llenergy.energy.phase_average import (
    averaged_phase,
    common_scale,
    figures_from_powers,
    occupied,
    occupied_seconds,
    pool,
    scale_se,
)
from pytest_llenergy.energy.phase_fit import (
    PhaseFit,
    _fraction,
    best_fit,
    design,
    fit,
    fitted_phase,
)
from pytest_llenergy.energy.phases import SeriesModel, WindowPhases


def span(start: float, first: float, end: float, inp: int = 32, out: int = 16, rid: str = "r") -> Span:
    return Span(rid, start, first, end, inp, out)


def make_run(spans: Sequence[Span], t: Sequence[float], p: Sequence[float], rel: float = 0.0,
             calibration: tuple[float, float] | None = None, p_raw: Sequence[float] | None = None) -> WindowPhases:
    """A run whose model is the series (t, p) as given: t[0] = 0 and t[-1] = duration are the edge points."""
    tt, pp = np.asarray(t, dtype=float), np.asarray(p, dtype=float)
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (pp[1:] + pp[:-1]) * np.diff(tt))))
    raw = None if p_raw is None else np.asarray(p_raw, dtype=float)
    model = SeriesModel(tt, pp, cum, float(np.median(np.diff(tt))), rel, raw, calibration)
    z = np.zeros(len(spans))
    return WindowPhases({}, list(spans), Shares(z, z, z, z, 0.0, 0.0), model, None)


def calibrated(calibration: tuple[float, float] | None) -> WindowPhases:
    """A run that only carries a calibration (for common_scale / scale_se)."""
    return make_run([span(0.1, 0.2, 0.5)], [0.0, 0.5, 1.0], [1.0, 1.0, 1.0], calibration=calibration)


# -- attribution ---------------------------------------------------------------------------------------------

def test_token_work_divides_by_each_span_length_and_puts_an_instant_prefill_at_its_start():
    spans = [span(0.0, 1.0, 5.0, inp=10, out=9),  # 10 tokens over 1 s, 8 steps over 4 s
             span(0.5, 0.5, 2.5, inp=7, out=3),  # zero-length prefill at 0.5, 2 steps over 2 s
             span(3.0, 3.5, 3.5, inp=6, out=5)]  # 6 tokens over 0.5 s, zero-length decode
    a = np.array([0.0, 0.5, 1.0, 2.5, 3.0, 3.5])
    b = np.array([0.5, 1.0, 2.5, 3.0, 3.5, 5.0])
    pre, dcd = token_work(spans, a, b)
    assert pre.tolist() == [[5, 0, 0], [5, 7, 0], [0, 0, 0], [0, 0, 0], [0, 0, 6], [0, 0, 0]]
    assert dcd.tolist() == [[0, 0, 0], [0, 0.5, 0], [3, 1.5, 0], [1, 0, 0], [1, 0, 0], [3, 0, 0]]


def test_cut_points_are_clipped_to_the_window():
    assert cut_points([span(-1.0, 2.0, 12.0)], 10.0).tolist() == [0.0, 2.0, 10.0]
    assert cut_points([], 3.0).tolist() == [0.0, 3.0]


def linear(watts: float):
    """Cumulative joules of a constant power."""
    return lambda x: watts * np.asarray(x, dtype=float)


TWO = [span(1.0, 2.0, 6.0, inp=10, out=9, rid="r0"),  # 8 decode steps over 4 s: 2 per s
       span(4.0, 5.0, 8.0, inp=30, out=4, rid="r1")]  # 3 decode steps over 3 s: 1 per s


def test_attribute_shares_each_interval_by_token_work_with_a_baseline():
    # 100 W over [0, 10]; intervals 0-1 idle, 1-2 r0 prefill, 2-4 r0 decode, 4-5 r0 2 steps : r1 30 tokens,
    # 5-6 r0 2 steps : r1 1 step, 6-8 r1 decode, 8-10 idle; 20 W baseline leaves 80 J per second
    s = attribute(TWO, 10.0, linear(100.0), baseline_w=20.0)
    assert s.prefill_j == pytest.approx([100.0, 100.0 * 30 / 32])
    assert s.decode_j == pytest.approx([200.0 + 100.0 * 2 / 32 + 100.0 * 2 / 3, 100.0 / 3 + 200.0])
    assert s.prefill_adj_j == pytest.approx([80.0, 80.0 * 30 / 32])
    assert s.decode_adj_j == pytest.approx([160.0 + 80.0 * 2 / 32 + 80.0 * 2 / 3, 80.0 / 3 + 160.0])
    assert (s.other_j, s.other_adj_j) == pytest.approx((300.0, 240.0))
    assert s.active_j.sum() + s.other_j == pytest.approx(1000.0)


def test_attribute_without_a_baseline_adjusts_nothing():
    s = attribute(TWO, 10.0, linear(100.0))
    assert s.prefill_adj_j.tolist() == s.prefill_j.tolist() and s.decode_adj_j.tolist() == s.decode_j.tolist()
    assert s.other_adj_j == s.other_j == pytest.approx(300.0)


def test_attribute_counts_an_interval_with_up_to_one_token_of_work_as_busy():
    # 4 tokens in [0, 1], then 1 decode step over [1, 5]: the decode interval holds exactly one step
    s = attribute([span(0.0, 1.0, 5.0, inp=4, out=2)], 5.0, linear(10.0))
    assert (s.prefill_j.tolist(), s.decode_j.tolist(), s.other_j) == ([10.0], [40.0], 0.0)
    s = attribute([span(0.0, 1.0, 5.0, inp=4, out=2), span(3.0, 4.0, 4.0, inp=1, out=1)], 5.0, linear(10.0))
    # [1, 3] and [4, 5] hold half and a quarter of a step; [3, 4] a quarter step against 1 prefill token
    assert s.decode_j == pytest.approx([20.0 + 10.0 * 0.25 / 1.25 + 10.0, 0.0])
    assert s.prefill_j == pytest.approx([10.0, 10.0 / 1.25])


def test_attribute_with_no_request_leaves_everything_other():
    s = attribute([], 10.0, linear(100.0), baseline_w=20.0)
    for arr in (s.prefill_j, s.decode_j, s.prefill_adj_j, s.decode_adj_j):
        assert isinstance(arr, np.ndarray) and arr.shape == (0,)
    assert (s.other_j, s.other_adj_j) == (1000.0, 800.0)


def test_attribute_of_one_request_is_not_the_empty_case():
    s = attribute([span(0.0, 2.0, 10.0, inp=5, out=5)], 10.0, linear(1.0))
    assert (s.prefill_j.tolist(), s.decode_j.tolist(), s.other_j) == ([2.0], [8.0], 0.0)


@pytest.mark.parametrize("active, other, expected", [
    ([3.0], 5.0, [5.0]),  # one request takes it all
    ([0.1, 0.4], 10.0, [2.0, 8.0]),  # in proportion, also when the active total is below 1 J
    ([0.0, 0.0], 6.0, [3.0, 3.0]),  # nothing active: equal shares
    ([], 5.0, []),
])
def test_spread_other(active: list[float], other: float, expected: list[float]):
    assert spread_other(np.array(active), other).tolist() == pytest.approx(expected)


@pytest.mark.parametrize("lo, hi, expected", [
    ([0.0, 1.0], [1.0, 2.0], [(0.0, 2.0)]),  # touching intervals merge
    ([3.0, 1.0], [4.0, 1.0], [(1.0, 1.0), (3.0, 4.0)]),  # a zero-length prefill is still an interval
    ([0.0, 2.0], [-1.0, 3.0], [(2.0, 3.0)]),  # a reversed one is dropped, the rest kept
    ([0.0, 0.5, 5.0], [2.0, 1.0, 6.0], [(0.0, 2.0), (5.0, 6.0)]),  # nested
])
def test_union_segments(lo: list[float], hi: list[float], expected: list[tuple[float, float]]):
    assert union_segments(np.array(lo), np.array(hi)) == expected


@pytest.mark.parametrize("segments, minus, expected", [
    ([(0.0, 10.0)], [(0.0, 2.0)], [(2.0, 10.0)]),  # touching the start: no empty piece before it
    ([(0.0, 10.0)], [(8.0, 10.0)], [(0.0, 8.0)]),  # touching the end
    ([(2.0, 3.0)], [(2.0, 3.0)], []),  # the same interval
    ([(0.0, 10.0)], [(4.0, 6.0)], [(0.0, 4.0), (6.0, 10.0)]),  # nested inside
    ([(0.0, 1.0), (2.0, 3.0)], [(5.0, 6.0)], [(0.0, 1.0), (2.0, 3.0)]),  # disjoint
])
def test_subtract_segments_at_touching_nested_and_disjoint_edges(segments, minus, expected):
    assert subtract_segments(segments, minus) == expected


# -- phase_average -------------------------------------------------------------------------------------------

def test_occupied_counts_only_the_seconds_inside_each_segment():
    x = np.array([0.0, 2.0, 4.0, 5.5, 10.0])
    assert occupied([(1.0, 3.0), (5.0, 6.0)], x).tolist() == [0.0, 1.0, 2.0, 2.5, 3.0]


#: samples at 1/8 s steps, p = 1..7, on [0, 1]: two prefill-active and two decode-only quarters
T8 = [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]
P8 = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 9.0]


def static_run(**kw) -> WindowPhases:
    """Two batches one after the other: prefill [0, .25] and [.5, .75], decode [.25, .5] and [.75, 1]."""
    return make_run([span(0.0, 0.25, 0.5, rid="a"), span(0.5, 0.75, 1.0, rid="b")], T8, P8, **kw)


def mixed_run(**kw) -> WindowPhases:
    """Continuous batching: b's prefill (15 tokens, [.5, .75]) runs while a decodes (15 steps over .75 s)."""
    return make_run([span(0.0, 0.25, 1.0, inp=32, out=16, rid="a"), span(0.5, 0.75, 1.0, inp=15, out=6, rid="b")],
                    T8, P8, **kw)


def test_occupied_seconds_shares_mixed_time_by_token_work():
    # [.5, .75]: 15 prefill tokens against 20 steps/s x .25 s = 5 decode steps
    assert occupied_seconds(mixed_run()) == {"prefill": {"prefill": 0.25 + 0.25 * 15 / 20, "decode": 0.25 * 5 / 20},
                                             "decode": {"prefill": 0.0, "decode": 0.5}}
    assert occupied_seconds(static_run()) == {"prefill": {"prefill": 0.5, "decode": 0.0},
                                              "decode": {"prefill": 0.0, "decode": 0.5}}


def test_pool_takes_the_samples_of_every_segment_half_open():
    # samples at .25, .5, .75 sit on boundaries: each belongs to the segment it starts
    run = static_run()
    assert pool([run], "prefill").tolist() == [1.0, 4.0, 5.0]
    assert pool([run], "decode").tolist() == [2.0, 3.0, 6.0, 7.0]
    assert pool([], "prefill").shape == (0,)


def test_pool_uses_raw_samples_and_one_calibration_for_all_runs():
    raw = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 9.0]
    runs = [static_run(calibration=(30.0, 10.0), p_raw=raw), static_run(calibration=(10.0, 10.0), p_raw=raw)]
    runs[0].model.p = runs[0].model.p * 3.0  # the per-run calibrated series is not what gets pooled
    assert pool(runs, "prefill").tolist() == [2.0, 8.0, 10.0, 2.0, 8.0, 10.0]  # 40 J / 20 J = 2


@pytest.mark.parametrize("calibrations, expected", [
    ([(120.0, 100.0), (100.0, 100.0)], 1.1),  # summed counters over summed integrals
    ([(0.6, 0.5)], 1.2),  # below one joule
    ([(120.0, 100.0), None], 1.0),  # one run without a counter: no calibration at all
    ([(0.0, 0.0)], 1.0),  # nothing integrated
    ([], 1.0),
])
def test_common_scale(calibrations, expected):
    assert common_scale([calibrated(c) for c in calibrations]) == pytest.approx(expected)


def test_scale_se_is_the_standard_error_of_the_per_run_ratios_relative_to_their_mean():
    # ratios 1.0, 1.2, 1.1 (the runs without a counter or with no integral are left out)
    runs = [calibrated(c) for c in [(100.0, 100.0), (120.0, 100.0), (0.55, 0.5), None, (5.0, 0.0)]]
    assert scale_se(runs) == pytest.approx(0.1 / math.sqrt(3) / 1.1)
    two = [calibrated(c) for c in [(102.0, 100.0), (98.0, 100.0)]]
    assert scale_se(two) == pytest.approx(0.04 / math.sqrt(2) / math.sqrt(2))
    assert scale_se([calibrated((120.0, 100.0))]) == 0.0


def two_runs() -> list[WindowPhases]:
    """Static runs: A one request (prefill .2 s, decode 1 s), B two (prefill .2 + .2 s, decode .7 + 1.6 s);
    calibration ratios 1.02 and 0.98 (relative standard error 0.02), window uncertainties 1 % and 2 %."""
    a = make_run([span(0.1, 0.3, 1.3)], [0.0, 0.5, 1.0, 1.5], [1.0] * 4, rel=0.01, calibration=(102.0, 100.0))
    b = make_run([span(0.1, 0.3, 1.0), span(1.2, 1.4, 3.0)], [0.0, 1.0, 2.0, 3.2], [1.0] * 4, rel=0.02,
                 calibration=(98.0, 100.0))
    return [a, b]


POWER, SE_W = {"prefill": 500.0, "decode": 200.0}, {"prefill": 10.0, "decode": 4.0}
REL_CAL2 = 0.02**2 + 0.02**2  # max window uncertainty and calibration spread, in quadrature


def test_figures_from_powers_prefill_terms_worked_by_hand():
    fig = figures_from_powers(two_runs(), "prefill", POWER, SE_W, 60, 100.0, 20.0, "m", ("x",))
    # per run 500 W x .2 s = 100 J and 500 x .4 = 200 J: the run-to-run standard error is 50 J
    u2 = (10.0 * 0.3) ** 2 + 50.0**2 + REL_CAL2 * 150.0**2
    assert fig.energy_j == pytest.approx(150.0)
    assert fig.uncertainty_j == pytest.approx(math.sqrt(u2))
    assert fig.adjusted_energy_j == pytest.approx(150.0 - 100.0 * 0.3)
    assert fig.adjusted_uncertainty_j == pytest.approx(math.sqrt(u2 + (20.0 * 0.3) ** 2))
    assert (fig.duration_s, fig.mean_power_w) == pytest.approx((0.3, 500.0))
    assert fig.tokens == 60 and fig.energy_per_token_j == pytest.approx(2.5)
    assert fig.adjusted_energy_per_token_j == pytest.approx(2.0)
    assert (fig.intervals, fig.method, fig.flags) == (3, "m", ("x",))


def test_figures_from_powers_decode_terms_worked_by_hand():
    fig = figures_from_powers(two_runs(), "decode", POWER, SE_W, None, None, None, "m", ())
    # 200 W x 1 s and 200 x 2.3 s: 200 J and 460 J, standard error 130 J
    u2 = (4.0 * 1.65) ** 2 + 130.0**2 + REL_CAL2 * 330.0**2
    assert (fig.energy_j, fig.uncertainty_j) == pytest.approx((330.0, math.sqrt(u2)))
    assert (fig.duration_s, fig.mean_power_w, fig.intervals) == pytest.approx((1.65, 200.0, 3))
    assert fig.adjusted_energy_j is None and fig.adjusted_uncertainty_j is None
    assert fig.tokens is None and fig.energy_per_token_j is None and fig.adjusted_energy_per_token_j is None


def test_figures_from_powers_of_one_run_uses_the_seconds_given():
    seconds = [{"prefill": {"prefill": 0.5, "decode": 0.1}, "decode": {"prefill": 0.0, "decode": 2.0}}]
    fig = figures_from_powers(two_runs()[:1], "prefill", POWER, SE_W, None, 100.0, None, "m", (), seconds)
    # one run: no spread term; its own 1 % is the calibration term (no second ratio)
    u = math.sqrt((10.0 * 0.5) ** 2 + (0.01 * 250.0) ** 2)
    assert (fig.energy_j, fig.uncertainty_j) == pytest.approx((250.0, u))
    assert fig.adjusted_energy_j == pytest.approx(250.0 - 100.0 * 0.5)
    assert fig.adjusted_uncertainty_j == pytest.approx(u)  # no baseline standard error given
    assert (fig.duration_s, fig.mean_power_w) == pytest.approx((0.2, 1250.0))  # duration: the spans' own


def test_figures_from_powers_of_a_zero_length_phase_has_no_mean_power():
    run = make_run([span(0.1, 0.3, 0.3)], [0.0, 0.5, 1.0], [1.0] * 3)
    seconds = [{"prefill": {"prefill": 0.2, "decode": 0.0}, "decode": {"prefill": 0.0, "decode": 0.0}}]
    fig = figures_from_powers([run], "decode", POWER, SE_W, None, None, None, "m", (), seconds)
    assert (fig.energy_j, fig.duration_s, fig.mean_power_w, fig.intervals) == (0.0, 0.0, None, 1)


def test_averaged_phase_of_static_batches_pools_one_kind_of_time():
    fig = averaged_phase([static_run()], "prefill", 64, 1.0, 0.5)
    # prefill-active samples 1, 4, 5: mean 10/3 W, standard error sqrt(13)/3; 0.5 s of prefill
    u = math.sqrt(13) / 3 * 0.5
    assert (fig.energy_j, fig.uncertainty_j) == pytest.approx((10 / 3 * 0.5, u))
    assert fig.adjusted_energy_j == pytest.approx(10 / 3 * 0.5 - 1.0 * 0.5)
    assert fig.adjusted_uncertainty_j == pytest.approx(math.hypot(u, 0.5 * 0.5))
    assert fig.tokens == 64 and fig.energy_per_token_j == pytest.approx(10 / 3 * 0.5 / 64)
    assert (fig.method, fig.flags, fig.intervals) == ("phase_resolved:1runs:3samples", ("few_samples",), 2)
    dec = averaged_phase([static_run()], "decode", None, None, None)  # decode-only samples 2, 3, 6, 7
    assert (dec.energy_j, dec.method) == (pytest.approx(4.5 * 0.5), "phase_resolved:1runs:4samples")
    assert averaged_phase([static_run()], "other", None, None, None) is None


def test_averaged_phase_of_mixed_time_pools_both_kinds():
    fig = averaged_phase([mixed_run()], "decode", 20, 1.0, 0.5)
    # 0.0625 s of the prefill-active time (mean 10/3 W) and 0.5 s of decode-only time (mean 4.5 W)
    energy, seconds = 10 / 3 * 0.0625 + 4.5 * 0.5, 0.0625 + 0.5
    u = math.hypot(math.sqrt(13) / 3 * 0.0625, math.sqrt(17 / 3) / 2 * 0.5)
    assert (fig.energy_j, fig.uncertainty_j) == pytest.approx((energy, u))
    assert fig.adjusted_energy_j == pytest.approx(energy - 1.0 * seconds)
    assert fig.adjusted_uncertainty_j == pytest.approx(math.hypot(u, 0.5 * seconds))
    assert (fig.duration_s, fig.intervals) == (0.75, 1)
    assert fig.method == "phase_resolved:1runs:7samples"


@pytest.mark.parametrize("t, p, se", [
    ([0.0, 0.125, 0.375, 1.0], [0.0, 1.0, 3.0, 0.0], 1.0),  # one sample: its own power is the error
    ([0.0, 0.125, 0.625, 1.0], [0.0, 1.0, 5.0, 0.0], 2.0),  # two: std 2 sqrt 2 / sqrt 2
])
def test_averaged_phase_of_one_or_two_samples(t: list[float], p: list[float], se: float):
    run = make_run([span(0.0, 0.25, 0.5), span(0.5, 0.75, 1.0)], t, p)
    fig = averaged_phase([run], "prefill", None, None, None)
    assert fig.uncertainty_j == pytest.approx(se * 0.5)


@pytest.mark.parametrize("n, flags", [(29, ("few_samples",)), (30, ())])
def test_averaged_phase_flags_fewer_than_30_samples(n: int, flags: tuple[str, ...]):
    t = (np.arange(n) + 0.5) / (2 * n)  # n samples inside the prefill [0, .5]
    run = make_run([span(0.0, 0.5, 1.0)], [0.0, *t, 1.0], [1.0] * (n + 2))
    fig = averaged_phase([run], "prefill", None, None, None)
    assert (fig.method, fig.flags) == (f"phase_resolved:1runs:{n}samples", flags)


# -- phase_fit -----------------------------------------------------------------------------------------------

def test_fraction_of_windows_and_points():
    segs = [(0.0, 1.0), (2.0, 3.0)]
    lo = np.array([0.5, 2.0, 1.0, 0.5, 1.5])
    hi = np.array([0.5, 2.0, 1.0, 2.5, 1.5])
    # points in the first and at the start of the second segment count, one at an end does not
    assert _fraction(segs, lo, hi).tolist() == [1.0, 1.0, 0.0, 0.5, 0.0]


def test_design_keeps_the_windows_inside_the_run():
    run = make_run([span(0.0, 0.5, 1.0)], [0.0, 0.1, 0.25, 0.6, 0.9, 1.0], [0.0, 10.0, 20.0, 30.0, 40.0, 0.0])
    x, p = design(run, 0.25, 0.0)
    # 0.1 reaches before 0; 0.25 starts exactly at 0; [.35, .6] is 60 % prefill
    assert p.tolist() == [20.0, 30.0, 40.0]
    assert x == pytest.approx(np.array([[1.0, 0.0, 0.0], [0.6, 0.4, 0.0], [0.0, 1.0, 0.0]]))
    assert design(run, 0.25, 0.0, 2.0)[1].tolist() == [40.0, 60.0, 80.0]


#: a sensor's view of 120 W idle, a prefill at 600 W over [.2, .3] and a decode at 300 W over [.3, .8]
SENSED_CUM = ([-1.0, 0.2, 0.3, 0.8, 2.0], [-120.0, 24.0, 84.0, 234.0, 378.0])
WINDOW_S, LAG_S = 0.03, 0.01


def sensor_run(**kw) -> WindowPhases:
    """One request sampled every 10 ms (from 5 ms), each sample the mean power of [t - 40 ms, t - 10 ms]."""
    t = (np.arange(99) + 0.5) / 100
    hi = t - LAG_S
    p = (np.interp(hi, *SENSED_CUM) - np.interp(hi - WINDOW_S, *SENSED_CUM)) / WINDOW_S
    return make_run([span(0.2, 0.3, 0.8)], [0.0, *t, 1.0], [120.0, *p, 120.0], **kw)


def test_fit_recovers_the_powers_through_the_sensor_window_and_lag():
    result = fit([sensor_run()], WINDOW_S, LAG_S)
    assert result.power_w == pytest.approx({"prefill": 600.0, "decode": 300.0, "other": 120.0})
    assert result.rms_w == pytest.approx(0.0, abs=1e-9)
    assert result.samples == 95  # the four before 45 ms reach before the window
    assert (result.window_s, result.lag_s) == (WINDOW_S, LAG_S)
    fig = fitted_phase([sensor_run()], "prefill", result, 32, 120.0, None)
    assert (fig.energy_j, fig.adjusted_energy_j) == pytest.approx((600.0 * 0.1, (600.0 - 120.0) * 0.1))
    assert fig.method == "phase_fit:1runs:95samples:window30ms:lag10ms" and fig.flags == ()
    assert fitted_phase([sensor_run()], "decode", result, None, None, None).energy_j == pytest.approx(300.0 * 0.5)


def test_fit_applies_the_common_calibration():
    result = fit([sensor_run(calibration=(200.0, 100.0))], WINDOW_S, LAG_S)
    assert result.power_w == pytest.approx({"prefill": 1200.0, "decode": 600.0, "other": 240.0})


def test_fit_pools_a_fraction_of_other_with_decode():
    # the sample at .55 averages [.51, .55]: 1/4 in the gap [.5, .52] (at decode power), 3/4 in prefill
    run = make_run([span(0.0, 0.1, 0.5), span(0.52, 0.6, 1.0)], [0.0, *((np.arange(10) + 0.5) / 10), 1.0],
                   [600.0, 600.0, 300.0, 300.0, 300.0, 300.0, 525.0, 300.0, 300.0, 300.0, 300.0, 300.0])
    result = fit([run], 0.04, 0.0)
    assert result.power_w == pytest.approx({"prefill": 600.0, "decode": 300.0})
    assert result.rms_w == pytest.approx(0.0, abs=1e-9) and result.samples == 10


def test_fit_resolves_other_from_one_samples_worth_per_run():
    run = make_run([span(0.0, 0.2, 0.4), span(0.5, 0.7, 1.0)], [0.0, *((np.arange(10) + 0.5) / 10), 1.0],
                   [600.0, 600.0, 600.0, 300.0, 300.0, 120.0, 600.0, 600.0, 300.0, 300.0, 300.0, 300.0])
    result = fit([run], 0.0, 0.0)
    assert result.power_w == pytest.approx({"prefill": 600.0, "decode": 300.0, "other": 120.0})


def test_fit_standard_errors_worked_by_hand():
    # point samples: two in prefill (599, 601), three in decode (299, 300, 301): the fit is the two means,
    # residual variance 4 / (5 - 2), standard errors sqrt(var / 2) and sqrt(var / 3)
    run = make_run([span(0.0, 0.4, 1.0)], [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0],
                   [600.0, 599.0, 601.0, 299.0, 300.0, 301.0, 300.0])
    result = fit([run], 0.0, 0.0)
    assert result.power_w == pytest.approx({"prefill": 600.0, "decode": 300.0})
    assert result.rms_w == pytest.approx(math.sqrt(4 / 3))
    assert result.se_w == pytest.approx({"prefill": math.sqrt(4 / 3 / 2), "decode": math.sqrt(4 / 3 / 3)})
    assert result.samples == 5


@pytest.mark.parametrize("t, p, fitted", [
    ([0.2, 0.4, 0.6, 0.8], [600.0, 600.0, 300.0, 300.0], True),  # two powers, two degrees of freedom
    ([0.2, 0.4, 0.6], [600.0, 600.0, 300.0], False),  # one degree of freedom: refused
])
def test_fit_needs_more_samples_than_powers_plus_one(t: list[float], p: list[float], fitted: bool):
    run = make_run([span(0.0, 0.5, 1.0)], [0.0, *t, 1.0], [600.0, *p, 300.0])
    result = fit([run], 0.0, 0.0)
    assert (result is not None) == fitted
    if fitted:
        assert result.power_w == pytest.approx({"prefill": 600.0, "decode": 300.0})


def test_fit_refuses_a_single_power_and_no_runs():
    run = make_run([span(0.0, 0.05, 1.0)], [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], [300.0] * 6)  # no sample in prefill
    assert fit([run], 0.0, 0.0) is None
    assert fit([], 0.0, 0.0) is None
    assert best_fit([], [0.02], [0.0]) is None


def test_fitted_phase_figures_from_a_given_fit():
    result = PhaseFit({"prefill": 600.0, "other": 100.0}, {"prefill": 5.0, "other": 1.0}, 1.0, 29, 1.0, 2.0)
    fig = fitted_phase([static_run()], "prefill", result, 64, 100.0, 10.0)
    # 600 W x 0.5 s of prefill, standard error 5 W x 0.5 s; the decode power the fit lacks is not needed
    assert (fig.energy_j, fig.uncertainty_j) == pytest.approx((300.0, 2.5))
    assert (fig.adjusted_energy_j, fig.adjusted_uncertainty_j) == pytest.approx((250.0, math.hypot(2.5, 5.0)))
    assert (fig.tokens, fig.energy_per_token_j) == (64, pytest.approx(300.0 / 64))
    assert (fig.duration_s, fig.mean_power_w, fig.intervals) == pytest.approx((0.5, 600.0, 2))
    assert fig.method == "phase_fit:1runs:29samples:window1000ms:lag2000ms"
    assert fig.flags == ("few_samples",)
    enough = PhaseFit(result.power_w, result.se_w, 1.0, 30, 0.02, 0.0)
    assert fitted_phase([static_run()], "prefill", enough, None, None, None).flags == ()
    assert fitted_phase([static_run()], "decode", enough, None, None, None) is None  # not fitted


def test_a_fit_without_prefill_power_gives_no_decode_figure_when_decode_shares_mixed_time():
    """No sample window overlapped either 20 ms prefill, so the fit has no prefill-active power; b's
    prefill ran while a decoded, so part of decode's energy is that mixed time: counting it at 0 W
    understated decode. The fit gives no figure (as the pooled fallback does), never a partial one."""
    t = [0.1, 0.3, 0.45, 0.7, 0.9, 1.05, 1.15]
    p = [300.0] * 5 + [120.0] * 2
    run = make_run([span(0.0, 0.02, 1.0, rid="a"), span(0.5, 0.52, 1.0, rid="b")], [0.0, *t, 1.2], [300.0, *p, 120.0])
    result = fit([run], 0.0, 0.0)
    assert result is not None and "prefill" not in result.power_w and "decode" in result.power_w
    assert occupied_seconds(run)["prefill"]["decode"] > 0  # decode draws on the mixed time
    assert fitted_phase([run], "decode", result, None, None, None) is None
    assert averaged_phase([run], "decode", None, None, None) is None
