"""Thermal gaps at their edges: tolerance boundaries, max_wait, reporting, several GPUs, missing readings.

Every test runs on a FakeClock started at 1000 s (so a waited time is a difference of clock readings) and a
ScriptedSource on that clock; ``sleep`` advances the clock, so nothing really waits. With ``hz=1`` the
window is one reading and readings fall at exactly 0, 1, 2, ... s; with ``hz=2`` the window is two readings
0.5 s apart. All expectations below are worked out by hand from the module's rules: settled when every
device's power (mean of the last second) is <= baseline x (1 + power_tolerance) and its temperature
<= baseline + temp_tolerance_c, with a full window of readings; not settled once waited >= max_wait_s.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_llenergy.energy import GapOutcome, fixed_gap, wait_until_settled
from pytest_llenergy.results.schema import GapInfo

from .conftest import FakeClock, ScriptedSource

NAN = float("nan")


def settle(power: Callable[[float], list[float]], base_p: dict[str, float],
           base_t: dict[str, float | None], *, n: int = 1,
           temp: Callable[[float], list[float]] | None = None, fail_after: float | None = None,
           statuses: list[tuple[float, str]] | None = None, **kwargs: float) -> tuple[GapOutcome, ScriptedSource]:
    """Run ``wait_until_settled`` on a scripted source (FakeClock at 1000 s); statuses get their clock time."""
    clock = FakeClock(1000.0)
    src = ScriptedSource(power, n=n, temp=temp, fail_after=fail_after, clock=clock)
    on_status = None if statuses is None else (lambda s: statuses.append((clock() - 1000.0, s)))
    kwargs = {"hz": 1.0, "power_tolerance": 0.25, "temp_tolerance_c": 2.0, "max_wait_s": 3.0} | kwargs
    out = wait_until_settled(src, base_p, base_t, on_status=on_status, clock=clock, sleep=clock.advance, **kwargs)
    return out, src


def test_power_exactly_at_the_tolerance_is_settled_and_one_watt_above_is_not() -> None:
    # 100 W x (1 + 0.25) = 125 W: 125 W is within the tolerance, on the first reading (window of one)
    out, src = settle(lambda t: [125.0], {"gpu0": 100.0}, {"gpu0": None})
    assert (out.settled, out.waited_s, out.reason, src.reads) == (True, 0.0, "settled after 0.0 s", 1)
    assert out.last_power_w == {"gpu0": 125.0} and out.last_temp_c == {"gpu0": None}
    # 126 W is above 125 W (and far below 100 x (2 + 0.25) = 225 W): readings at 0, 1, 2, 3 s, then give up
    out, src = settle(lambda t: [126.0], {"gpu0": 100.0}, {"gpu0": None})
    assert (out.settled, out.waited_s, src.reads) == (False, 3.0, 4)
    assert out.reason == "not settled after 3 s: gpu0 power 126 W > 125 W"
    assert out.last_power_w == {"gpu0": 126.0}


def test_temperature_exactly_at_the_tolerance_is_settled_and_one_degree_above_is_not() -> None:
    # 35 C + 2 C = 37 C: 37 C is within the tolerance; 38 C is not
    out, _ = settle(lambda t: [100.0], {"gpu0": 100.0}, {"gpu0": 35.0}, temp=lambda t: [37.0])
    assert (out.settled, out.reason, out.last_temp_c) == (True, "settled after 0.0 s", {"gpu0": 37.0})
    out, _ = settle(lambda t: [100.0], {"gpu0": 100.0}, {"gpu0": 35.0}, temp=lambda t: [38.0])
    assert (out.settled, out.waited_s) == (False, 3.0)
    assert out.reason == "not settled after 3 s: gpu0 temp 38 C > 37 C"
    assert (out.last_power_w, out.last_temp_c) == ({"gpu0": 100.0}, {"gpu0": 38.0})


def test_power_and_temperature_are_both_needed() -> None:
    hot = settle(lambda t: [100.0], {"gpu0": 100.0}, {"gpu0": 35.0}, temp=lambda t: [50.0])[0]
    loud = settle(lambda t: [200.0], {"gpu0": 100.0}, {"gpu0": 35.0}, temp=lambda t: [30.0])[0]
    assert hot.settled is False and hot.reason == "not settled after 3 s: gpu0 temp 50 C > 37 C"
    assert loud.settled is False and loud.reason == "not settled after 3 s: gpu0 power 200 W > 125 W"
    both = settle(lambda t: [200.0], {"gpu0": 100.0}, {"gpu0": 35.0}, temp=lambda t: [50.0])[0]
    assert both.reason == "not settled after 3 s: gpu0 power 200 W > 125 W; gpu0 temp 50 C > 37 C"
    # cooler and quieter than the baseline counts as settled
    cool = settle(lambda t: [80.0], {"gpu0": 100.0}, {"gpu0": 35.0}, temp=lambda t: [30.0])[0]
    assert (cool.settled, cool.last_power_w, cool.last_temp_c) == (True, {"gpu0": 80.0}, {"gpu0": 30.0})


def test_settles_on_the_first_reading_that_meets_the_tolerances() -> None:
    # 200 W until 1.5 s, then 100 W: the readings at 0 and 1 s are above 125 W, the one at 2 s is not
    out, src = settle(lambda t: [200.0 if t < 1.5 else 100.0], {"gpu0": 100.0}, {"gpu0": None}, max_wait_s=10.0)
    assert (out.settled, out.waited_s, out.reason, src.reads) == (True, 2.0, "settled after 2.0 s", 3)
    assert out.last_power_w == {"gpu0": 100.0}


def test_power_is_the_mean_of_the_last_second() -> None:
    # hz=2: a window of two readings. 200 W at 0 s, then 100 W: mean 200 (window not full), then
    # (200 + 100) / 2 = 150 W > 105 W at 0.5 s, then (100 + 100) / 2 = 100 W at 1.0 s: settled
    out, src = settle(lambda t: [200.0 if t < 0.25 else 100.0], {"gpu0": 100.0}, {"gpu0": None},
                      hz=2.0, power_tolerance=0.05)
    assert (out.settled, out.waited_s, out.reason, src.reads) == (True, 1.0, "settled after 1.0 s", 3)
    # gives up at 0.5 s with the mean of both readings as the last power
    out, _ = settle(lambda t: [200.0 if t < 0.25 else 100.0], {"gpu0": 100.0}, {"gpu0": None},
                    hz=2.0, power_tolerance=0.05, max_wait_s=0.5)
    assert (out.settled, out.waited_s, out.last_power_w) == (False, 0.5, {"gpu0": 150.0})
    assert out.reason == "not settled after 0.5 s: gpu0 power 150 W > 105 W"


def test_a_full_window_is_needed_and_a_window_is_at_least_one_reading() -> None:
    # hz=4: four readings 0.25 s apart; with max_wait 0.5 s only three are taken (0, 0.25, 0.5 s)
    out, src = settle(lambda t: [100.0], {"gpu0": 100.0}, {"gpu0": None}, hz=4.0, max_wait_s=0.5)
    assert (out.settled, out.waited_s, src.reads) == (False, 0.5, 3)
    assert out.reason == "not settled after 0.5 s: too few readings"
    assert out.last_power_w == {"gpu0": 100.0}
    # hz=0.4 rounds to a window of 0, taken as 1: settled on the first reading
    out, _ = settle(lambda t: [100.0], {"gpu0": 100.0}, {"gpu0": None}, hz=0.4)
    assert (out.settled, out.waited_s) == (True, 0.0)


def test_max_wait_is_reached_exactly_and_zero_still_takes_one_reading() -> None:
    out, src = settle(lambda t: [500.0], {"gpu0": 100.0}, {"gpu0": None}, max_wait_s=2.0)
    assert (out.settled, out.waited_s, src.reads) == (False, 2.0, 3)  # readings at 0, 1, 2 s
    out, src = settle(lambda t: [500.0], {"gpu0": 100.0}, {"gpu0": None}, max_wait_s=0.0)
    assert (out.settled, out.waited_s, src.reads) == (False, 0.0, 1)
    assert out.reason == "not settled after 0 s: gpu0 power 500 W > 125 W"
    out, _ = settle(lambda t: [100.0], {"gpu0": 100.0}, {"gpu0": None}, max_wait_s=0.0)
    assert (out.settled, out.reason) == (True, "settled after 0.0 s")  # settled is checked first


def test_one_of_several_gpus_not_settled_keeps_all_waiting() -> None:
    out, _ = settle(lambda t: [100.0, 300.0, 110.0], {"gpu0": 100.0, "gpu1": 100.0, "gpu2": 100.0},
                    {"gpu0": 35.0, "gpu1": 35.0, "gpu2": 35.0}, n=3,
                    temp=lambda t: [36.0, 36.0, 40.0], power_tolerance=0.05)
    # gpu0 settled; gpu1 is 300 > 105 W; gpu2 is 110 > 105 W and 40 > 37 C
    assert out.settled is False and out.waited_s == 3.0
    assert out.reason == ("not settled after 3 s: gpu1 power 300 W > 105 W; "
                          "gpu2 power 110 W > 105 W; gpu2 temp 40 C > 37 C")
    assert out.last_power_w == {"gpu0": 100.0, "gpu1": 300.0, "gpu2": 110.0}
    assert out.last_temp_c == {"gpu0": 36.0, "gpu1": 36.0, "gpu2": 40.0}
    assert out.to_info("adaptive") == {
        "kind": "adaptive", "waited_s": 3.0, "reason": out.reason,
        "start_power_w": {"gpu0": 100.0, "gpu1": 300.0, "gpu2": 110.0},
        "start_temperature_c": {"gpu0": 36.0, "gpu1": 36.0, "gpu2": 40.0}}


def test_missing_readings_and_baselines_are_no_constraint() -> None:
    # gpu0: no temperature reading (NaN); gpu1: no power baseline and no temperature baseline
    out, _ = settle(lambda t: [100.0, 400.0], {"gpu0": 100.0}, {"gpu0": 35.0, "gpu1": None}, n=2,
                    temp=lambda t: [NAN, 80.0])
    assert (out.settled, out.waited_s, out.reason) == (True, 0.0, "settled after 0.0 s")
    assert out.last_power_w == {"gpu0": 100.0, "gpu1": 400.0}
    assert out.last_temp_c == {"gpu0": None, "gpu1": 80.0}
    info = out.to_info("adaptive")
    assert info["start_power_w"] == {"gpu0": 100.0, "gpu1": 400.0}
    assert info["start_temperature_c"] == {"gpu1": 80.0}  # the missing reading is left out
    assert GapInfo.model_validate(info).start_temperature_c == {"gpu1": 80.0}
    # a source without temperatures: every temperature is None, none reported
    out, _ = settle(lambda t: [100.0, 100.0], {"gpu0": 100.0, "gpu1": 100.0}, {"gpu0": 35.0, "gpu1": 35.0}, n=2)
    assert out.settled is True and out.last_temp_c == {"gpu0": None, "gpu1": None}
    assert out.to_info("adaptive")["start_temperature_c"] == {}


def test_a_source_error_reports_the_last_readings() -> None:
    # hz=2: readings at 0 s (200 W, 60 C) and 0.5 s (100 W, 40 C); the read at 1.0 s fails
    out, src = settle(lambda t: [200.0 if t < 0.25 else 100.0], {"gpu0": 100.0}, {"gpu0": 35.0},
                      temp=lambda t: [60.0 if t < 0.25 else 40.0], fail_after=1.0, hz=2.0, power_tolerance=0.05,
                      max_wait_s=10.0)
    assert (out.settled, out.waited_s, src.reads) == (False, 1.0, 2)
    assert out.reason == "source error: gpu0: power failed: GPU is lost"
    assert out.last_power_w == {"gpu0": 150.0} and out.last_temp_c == {"gpu0": 40.0}


def test_a_source_error_on_the_first_read_has_no_readings() -> None:
    out, src = settle(lambda t: [100.0, 100.0], {"gpu0": 100.0}, {"gpu0": 35.0}, n=2,
                      temp=lambda t: [35.0, 35.0], fail_after=0.0)
    assert (out.settled, out.waited_s, src.reads) == (False, 0.0, 0)
    assert out.last_power_w == {"gpu0": None, "gpu1": None}
    assert out.last_temp_c == {"gpu0": None, "gpu1": None}
    assert out.to_info("adaptive") == {"kind": "adaptive", "waited_s": 0.0, "reason": out.reason,
                                       "start_power_w": {}, "start_temperature_c": {}}


def test_status_every_five_seconds_from_the_start() -> None:
    statuses: list[tuple[float, str]] = []
    settle(lambda t: [200.0], {"gpu0": 100.0}, {"gpu0": 35.0}, temp=lambda t: [50.0], power_tolerance=0.05,
           max_wait_s=12.0, statuses=statuses)
    # readings at 0..12 s; a status at 0, 5 and 10 s; none at 12 s (the wait ends first)
    pending = "gpu0 power 200 W > 105 W; gpu0 temp 50 C > 37 C"
    assert statuses == [(0.0, f"cooling down 0/12 s: {pending}"), (5.0, f"cooling down 5/12 s: {pending}"),
                        (10.0, f"cooling down 10/12 s: {pending}")]


def test_status_says_settling_while_the_window_fills() -> None:
    statuses: list[tuple[float, str]] = []
    out, _ = settle(lambda t: [100.0], {"gpu0": 100.0}, {"gpu0": None}, hz=2.0, max_wait_s=120.0,
                    statuses=statuses)
    assert statuses == [(0.0, "cooling down 0/120 s: settling")]
    assert (out.settled, out.waited_s) == (True, 0.5)


def test_fixed_gap_sleeps_any_positive_time_and_never_a_negative_one() -> None:
    slept: list[float] = []
    out = fixed_gap(0.5, sleep=slept.append)
    assert slept == [0.5] and (out.waited_s, out.settled, out.reason) == (0.5, None, "fixed 0.5 s")
    out = fixed_gap(-1.0, sleep=slept.append)
    assert slept == [0.5] and (out.waited_s, out.reason) == (0.0, "fixed -1 s")
    assert out.to_info("fixed") == {"kind": "fixed", "waited_s": 0.0, "reason": "fixed -1 s",
                                    "start_power_w": {}, "start_temperature_c": {}}


@pytest.mark.parametrize("settled", [True, False, None])
def test_to_info_leaves_out_missing_values(settled: bool | None) -> None:
    out = GapOutcome(4.0, settled, "r", {"gpu0": 130.0, "gpu1": None}, {"gpu0": None, "gpu1": 41.0})
    assert out.to_info("adaptive") == {"kind": "adaptive", "waited_s": 4.0, "reason": "r",
                                       "start_power_w": {"gpu0": 130.0}, "start_temperature_c": {"gpu1": 41.0}}
