"""Warmup convergence and thermal gaps (fake clocks, no real waiting)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_llenergy.energy import fixed_gap, run_warmup, wait_until_settled
from pytest_llenergy.energy.warmup import cv
from pytest_llenergy.results.schema import GapInfo, WarmupOutcome

from .conftest import FakeClock, ScriptedSource


def scripted_latencies(values: list[float]):
    """A workload fn and a clock such that the i-th call 'takes' values[i] seconds."""
    clock = FakeClock(100.0)  # not 0: durations are differences of clock readings
    it = iter(values)
    return (lambda: clock.advance(next(it))), clock


def test_cv_definition() -> None:
    assert cv([1.0, 1.0, 1.0]) == 0.0
    assert cv([1.0, 2.0, 3.0]) == pytest.approx(np.std([1, 2, 3], ddof=1) / 2.0)
    assert cv([0.0, 0.0]) == float("inf")


def test_convergence() -> None:
    lat = [3.0, 2.0, 1.5, 1.01, 1.0, 1.0, 1.02, 0.99, 1.0, 1.01, 9, 9, 9]
    fn, clock = scripted_latencies(lat)
    r = run_warmup(fn, "convergence", cv_threshold=0.05, window=5, min_iterations=5, clock=clock)
    assert r.converged is True and r.iterations == 8 and r.final_cv < 0.05
    assert r.latencies_s == pytest.approx(lat[:8])
    d = r.to_dict()
    assert WarmupOutcome.model_validate(d).model_dump() == d


def test_min_iterations_respected() -> None:
    fn, clock = scripted_latencies([1.0] * 20)
    r = run_warmup(fn, window=3, min_iterations=7, clock=clock)
    assert r.converged and r.iterations == 7


def test_non_convergence_stops_at_max() -> None:
    rng = np.random.default_rng(0)
    fn, clock = scripted_latencies(list(rng.uniform(0.5, 1.5, 100)))
    r = run_warmup(fn, max_iterations=12, clock=clock)
    assert r.converged is False and r.iterations == 12 and r.final_cv > 0.05
    assert len(r.latencies_s) == 12 and r.cv_threshold == 0.05


def test_fixed_and_off() -> None:
    fn, clock = scripted_latencies([1.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    r = run_warmup(fn, "fixed", iterations=6, clock=clock)
    assert (r.mode, r.converged, r.iterations, r.cv_threshold) == ("fixed", None, 6, None)
    assert r.final_cv == pytest.approx(cv([2.0, 1.0, 1.0, 1.0, 1.0]))
    calls = []
    r = run_warmup(lambda: calls.append(1), "off")
    assert (r.iterations, r.converged, calls) == (0, None, [])
    assert WarmupOutcome.model_validate(r.to_dict()).mode == "off"


@pytest.mark.parametrize("kwargs", [dict(mode="sometimes"), dict(window=1), dict(max_iterations=3),
                                    dict(mode="fixed", iterations=-1)])
def test_warmup_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        run_warmup(lambda: None, **kwargs)


def cooling_source(clock: FakeClock, tau: float = 5.0, temp0: float = 70.0) -> ScriptedSource:
    """690 W decaying to a 120 W plateau; temperature decaying to 35 C."""
    return ScriptedSource(lambda t: [120 + 570 * np.exp(-t / tau), 121.0], n=2, clock=clock,
                          temp=lambda t: [35 + (temp0 - 35) * np.exp(-t / (2 * tau)), 36.0])


def test_waits_until_power_and_temperature_settle() -> None:
    clock = FakeClock(0.0)
    statuses: list[str] = []
    out = wait_until_settled(cooling_source(clock), {"gpu0": 120.0, "gpu1": 120.0},
                             {"gpu0": 35.0, "gpu1": 36.0}, power_tolerance=0.15, temp_tolerance_c=5.0,
                             on_status=statuses.append,
                             clock=clock, sleep=clock.advance)
    # power within 15 % needs exp(-t/5) < 18/570 -> t > 17.3 s; temperature within 5 C needs
    # 35 exp(-t/10) < 5 -> t > 19.5 s; plus a full second of readings
    assert out.settled is True and 19.5 <= out.waited_s <= 21.0
    assert out.last_power_w["gpu0"] < 138 and out.last_temp_c["gpu0"] <= 40
    assert statuses and statuses[0].startswith("cooling down 0/120 s") and len(statuses) == 4
    info = out.to_info("adaptive")
    assert GapInfo.model_validate(info).start_power_w["gpu0"] == pytest.approx(out.last_power_w["gpu0"])


def test_below_baseline_counts_as_settled() -> None:
    clock = FakeClock(0.0)
    src = ScriptedSource(lambda t: [82.0], clock=clock)  # deep idle, below the P0 baseline
    out = wait_until_settled(src, {"gpu0": 120.0}, {"gpu0": None}, clock=clock, sleep=clock.advance)
    assert out.settled and out.waited_s == pytest.approx(0.9)


def test_wait_is_bounded() -> None:
    clock = FakeClock(0.0)
    out = wait_until_settled(cooling_source(clock, tau=1e6), {"gpu0": 120.0}, {"gpu0": None},
                             power_tolerance=0.15, max_wait_s=3.0, clock=clock, sleep=clock.advance)
    assert out.settled is False and out.waited_s == pytest.approx(3.0, abs=0.11)
    assert "gpu0 power 690 W > 138 W" in out.reason


def test_defaults_are_the_campaign_defaults() -> None:
    clock = FakeClock(0.0)
    out = wait_until_settled(cooling_source(clock, tau=1e6), {"gpu0": 120.0}, {"gpu0": None},
                             max_wait_s=1.0, clock=clock, sleep=clock.advance)
    assert "gpu0 power 690 W > 126 W" in out.reason  # 120 W x (1 + GapsConfig().power_tolerance = 0.05)


def test_source_error_ends_the_wait() -> None:
    clock = FakeClock(0.0)
    src = ScriptedSource(lambda t: [500.0], clock=clock, fail_after=1.0)
    out = wait_until_settled(src, {"gpu0": 120.0}, {}, clock=clock, sleep=clock.advance)
    assert out.settled is False and out.reason.startswith("source error: gpu0")


def test_fixed_gap() -> None:
    slept: list[float] = []
    out = fixed_gap(2.5, sleep=slept.append)
    assert slept == [2.5] and out.waited_s == 2.5 and out.settled is None
    assert GapInfo.model_validate(out.to_info("fixed")).reason == "fixed 2.5 s"
    assert fixed_gap(0, sleep=slept.append).waited_s == 0 and slept == [2.5]


def test_time_budget_stops_a_warmup_that_never_settles() -> None:
    rng = np.random.default_rng(1)
    fn, clock = scripted_latencies(list(rng.uniform(0.5, 1.5, 1000)))
    r = run_warmup(fn, max_iterations=1000, max_time_s=10.0, clock=clock)
    assert r.outcome == "budget_exhausted" and r.converged is False
    assert 10.0 <= r.duration_s < 11.5 and r.iterations < 25  # stops after the run that crossed the budget
    fn, clock = scripted_latencies([1.0] * 20)
    r = run_warmup(fn, "fixed", iterations=20, max_time_s=3.0, clock=clock)
    assert (r.outcome, r.iterations) == ("budget_exhausted", 3)


def test_outcomes_and_durations() -> None:
    fn, clock = scripted_latencies([1.0] * 10)
    r = run_warmup(fn, window=3, min_iterations=3, clock=clock)
    assert (r.outcome, r.duration_s) == ("converged", pytest.approx(3.0))
    fn, clock = scripted_latencies([1.0, 3.0] * 10)
    assert run_warmup(fn, window=3, max_iterations=6, clock=clock).outcome == "not_converged"
    from pytest_llenergy.energy.warmup import rewarm

    fn, clock = scripted_latencies([0.5, 0.5])
    r = rewarm(fn, 2, clock=clock)
    assert (r.outcome, r.iterations, r.duration_s) == ("rewarm", 2, pytest.approx(1.0))
    assert WarmupOutcome.model_validate(r.to_dict()).outcome == "rewarm"


def test_convergence_defaults_and_the_strict_threshold() -> None:
    # defaults: cv < 0.05 over a window of 5, at least 5 and at most 50 iterations
    fn, clock = scripted_latencies([1.0] * 60)
    r = run_warmup(fn, clock=clock)
    assert (r.mode, r.converged, r.iterations, r.final_cv, r.cv_threshold) == ("convergence", True, 5, 0.0, 0.05)
    rng = np.random.default_rng(1)
    fn, clock = scripted_latencies(list(rng.uniform(0.5, 1.5, 60)))
    r = run_warmup(fn, clock=clock)
    assert (r.mode, r.converged, r.iterations, r.outcome) == ("convergence", False, 50, "not_converged")
    assert r.duration_s == pytest.approx(sum(r.latencies_s))
    window = [1.0, 1.0, 1.0, 1.0, 2.0]
    at = cv(window)
    fn, clock = scripted_latencies(window * 2)
    r = run_warmup(fn, cv_threshold=at, max_iterations=5, clock=clock)
    assert not r.converged and r.final_cv == at  # equal to the threshold is not below it
    fn, clock = scripted_latencies(window)
    assert run_warmup(fn, cv_threshold=np.nextafter(at, 1), max_iterations=5, clock=clock).converged


@pytest.mark.parametrize("kwargs", [dict(window=2, min_iterations=1, max_iterations=2),
                                    dict(window=3, min_iterations=4, max_iterations=4),
                                    dict(window=4, min_iterations=2, max_iterations=4)])
def test_validation_accepts_its_bounds(kwargs: dict) -> None:
    fn, clock = scripted_latencies([1.0] * 10)
    assert run_warmup(fn, clock=clock, **kwargs).converged


@pytest.mark.parametrize("kwargs", [dict(min_iterations=0), dict(min_iterations=6, max_iterations=5),
                                    dict(window=6, max_iterations=5)])
def test_validation_refuses_past_its_bounds(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=r"need window >= 2, min_iterations >= 1 and max_iterations >= "
                                         r"max\(min_iterations, window\)"):
        run_warmup(lambda: None, **kwargs)
    with pytest.raises(ValueError, match="warmup mode must be one of"):
        run_warmup(lambda: None, "sometimes")
    with pytest.raises(ValueError, match="iterations must be >= 0, got -1"):
        run_warmup(lambda: None, "fixed", iterations=-1)


def test_time_budget_of_convergence_is_checked_after_each_call() -> None:
    fn, clock = scripted_latencies([1.0, 3.0] * 10)
    r = run_warmup(fn, window=2, min_iterations=1, max_iterations=20, max_time_s=4.0, clock=clock)
    assert (r.outcome, r.converged, r.iterations, r.duration_s) == ("budget_exhausted", False, 2, 4.0)
    assert r.mode == "convergence" and r.latencies_s == [1.0, 3.0]
    assert r.final_cv == pytest.approx(cv([1.0, 3.0])) and r.cv_threshold == 0.05
    fn, clock = scripted_latencies([1.0] * 5)
    r = run_warmup(fn, window=2, min_iterations=2, max_iterations=5, max_time_s=2.0, clock=clock)
    assert r.outcome == "converged"  # converged on the call that spent the budget
    fn, clock = scripted_latencies([1.0, 3.0] * 3)
    r = run_warmup(fn, window=3, min_iterations=1, max_iterations=6, max_time_s=1.5, clock=clock)
    assert (r.outcome, r.iterations, r.final_cv) == ("budget_exhausted", 2, None)  # fewer than a window


def test_fixed_runs_iterations_with_a_budget_and_the_last_windows_cv() -> None:
    fn, clock = scripted_latencies([1.0] * 5)
    r = run_warmup(fn, "fixed", clock=clock)  # default: 5 iterations
    assert (r.iterations, r.outcome, r.final_cv, r.duration_s) == (5, "fixed", 0.0, 5.0)
    fn, clock = scripted_latencies([1.0] * 10)
    r = run_warmup(fn, "fixed", iterations=10, max_time_s=3.0, clock=clock)
    assert (r.iterations, r.outcome, r.mode) == (3, "budget_exhausted", "fixed")
    fn, clock = scripted_latencies([1.0] * 3)
    r = run_warmup(fn, "fixed", iterations=3, max_time_s=3.0, clock=clock)
    assert (r.iterations, r.outcome) == (3, "fixed")  # the budget ran out with the last call: done anyway
    fn, clock = scripted_latencies([2.0, 1.0])
    r = run_warmup(fn, "fixed", iterations=2, window=2, clock=clock)
    assert r.final_cv == pytest.approx(cv([2.0, 1.0]))
    fn, clock = scripted_latencies([1.0])
    r = run_warmup(fn, "fixed", iterations=1, window=1, clock=clock)
    assert r.final_cv is None  # one value has no spread
    fn, clock = scripted_latencies([])
    r = run_warmup(fn, "fixed", iterations=0, clock=clock)
    assert (r.iterations, r.latencies_s, r.final_cv) == (0, [], None)


def test_rewarm_is_a_fixed_run_over_a_window_of_five() -> None:
    from pytest_llenergy.energy.warmup import rewarm

    lat = [9.0, 1.0, 1.0, 1.0, 1.0, 2.0]
    fn, clock = scripted_latencies(lat)
    r = rewarm(fn, 6, clock=clock)
    assert (r.mode, r.converged, r.cv_threshold, r.outcome) == ("fixed", None, None, "rewarm")
    assert r.final_cv == pytest.approx(cv(lat[-5:])) and r.latencies_s == lat
    fn, clock = scripted_latencies([1.0] * 4)
    r = rewarm(fn, 4, clock=clock, max_time_s=2.0)
    assert (r.iterations, r.outcome, r.final_cv) == (2, "budget_exhausted", None)
    with pytest.raises(ValueError, match="iterations must be >= 0, got -1"):
        rewarm(lambda: None, -1)
    assert rewarm(lambda: None, 0).iterations == 0


def test_cv_of_integers_and_the_result_dict() -> None:
    assert cv([1, 2, 3]) == pytest.approx(0.5)
    assert cv([0.0, 0.0]) == float("inf") and str(cv([1.0, -1.0])) == "inf"
    r = run_warmup(lambda: None, "off")
    assert r.to_dict() == {"mode": "off", "converged": None, "iterations": 0, "final_cv": None, "cv_threshold": None,
                           "latencies_s": [], "outcome": "off", "duration_s": 0.0, "probe": None}


def test_warm_shapes_runs_each_once_within_the_budget() -> None:
    from pytest_llenergy.energy.warmup import warm_shapes

    clock = FakeClock(50.0)
    ran: list[int] = []

    def shape(i: int, seconds: float):
        return lambda: (ran.append(i), clock.advance(seconds))

    runs = [shape(0, 4.0), shape(1, 4.0), shape(2, 4.0)]
    assert warm_shapes(runs, spent_s=1.0, max_time_s=None, clock=clock) == (3, pytest.approx(12.0))
    ran.clear()
    # 1 s spent before: after shape 0 (5 s) and shape 1 (9 s) the budget of 9 s is reached
    assert warm_shapes(runs, spent_s=1.0, max_time_s=9.0, clock=clock) == (2, pytest.approx(8.0))
    assert ran == [0, 1]
    ran.clear()
    # the first shape runs even when the probes spent the whole budget: it is the warmup's last step
    assert warm_shapes(runs, spent_s=20.0, max_time_s=9.0, clock=clock)[0] == 1
    assert ran == [0]


def test_warmup_runs_are_one_batch_per_shape_in_order_or_the_served_workload_whole() -> None:
    from pytest_llenergy.backends.base import Workload

    a, b, c = [[1] * 8] * 4, [[2] * 8, [2] * 3] * 2, [[3] * 8] * 2  # (4, 8), (4, 8), (2, 8)
    work = Workload([a, b, a, c, [[4] * 5] * 4], output_tokens=16, seed=3)
    runs = work.warmup_runs()
    assert [r.batches for r in runs] == [[a], [c], [[[4] * 5] * 4]]  # b has a's shape: rows and longest prompt
    assert {(r.output_tokens, r.seed, r.arrivals) for r in runs} == {(16, 3, None)}
    assert [r.batches for r in Workload([a, a], 16).warmup_runs()] == [[a]]
    served = Workload([a, c], 16, arrivals="poisson")
    assert [r is served for r in served.warmup_runs()] == [True]  # a serving schedule is not split into batches
    assert served.shape != Workload([a, c], 16).shape  # served and offline warm up apart
