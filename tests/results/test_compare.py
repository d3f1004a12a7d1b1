"""--lem-compare-fail's test holds its false-alarm rate under the H200's measured noise and catches
a 3 % regression with the recipe of docs/ci.md (simulated with results/noise.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_llenergy.results.compare import MARGIN_FRACTION, compare_values, parse_rules
from pytest_llenergy.results.noise import GPU_BOUND, HOST_BOUND, NEW, TODAY, cycle_values

RULE = parse_rules("adjusted_energy_per_output_token:3%")[0]
GATES = 2000


def fail_rate(workload, measurement, *, cycles: int, calls: int, factor: float, seed: int, alpha: float = 0.01,
              run_offsets: bool = True) -> float:
    """Fraction of GATES simulated gates (new run against a saved run) that compare_values fails."""
    rng = np.random.default_rng(seed)
    kw = {} if run_offsets else {"offsets": np.zeros(GATES)}
    old = cycle_values(rng, workload, measurement, runs=GATES, cycles=cycles, calls=calls, **kw)
    new = cycle_values(rng, workload, measurement, runs=GATES, cycles=cycles, calls=calls, factor=factor, **kw)
    return float(np.mean([compare_values("e", list(a), list(b), RULE, alpha).regression for a, b in zip(old, new)]))


def slack(rate: float) -> float:
    """3.5 binomial standard errors of a GATES-gate estimate."""
    return 3.5 * math.sqrt(rate * (1 - rate) / GATES)


@pytest.mark.slow
@pytest.mark.parametrize(("workload", "measurement", "cycles", "calls", "saved_elsewhere"),
                         [(GPU_BOUND, NEW, 40, 2, True), (HOST_BOUND, TODAY, 5, 2, False), (HOST_BOUND, NEW, 3, 1, False)])
def test_false_alarms_stay_at_alpha_with_no_change_and_at_the_margin(workload, measurement, cycles, calls,
                                                                     saved_elsewhere):
    # saved_elsewhere: the saved run's baseline offset differs (1.1 W, another day or machine). The recipe's
    # GPU-bound path holds alpha under it; host-bound HF generate (~23 W above idle) cannot, and docs/ci.md
    # says to gate it only within one job (interleaved) or against a run of the same machine and day.
    no_change = fail_rate(workload, measurement, cycles=cycles, calls=calls, factor=1.0, seed=1,
                          run_offsets=saved_elsewhere)
    assert no_change <= 0.01 + slack(0.01)
    # The worst case the test allows: a true change exactly at the margin fails alpha of the time (without
    # run-to-run baseline offsets, which the cycles cannot see: with 1.1 W offsets the GPU-bound recipe
    # fails 8.9 % at the margin, 4.4 % at +0.75 %; docs/ci.md).
    at_margin = fail_rate(workload, measurement, cycles=cycles, calls=calls, factor=1 + MARGIN_FRACTION * 0.03, seed=2,
                          run_offsets=False)
    assert 0.01 - slack(0.01) - 0.003 <= at_margin <= 0.01 + slack(0.01) + 0.003  # + Welch's df approximation


def test_the_recipe_catches_a_three_percent_regression():
    power = fail_rate(GPU_BOUND, NEW, cycles=40, calls=2, factor=1.03, seed=3)
    assert power >= 0.95 - slack(0.95)


@pytest.mark.slow
def test_a_host_bound_run_saved_on_another_day_raises_false_alarms():
    """The limitation docs/ci.md states: the run offset is ~5 % of host-bound adjusted energy."""
    assert fail_rate(HOST_BOUND, TODAY, cycles=5, calls=2, factor=1.0, seed=1) > 0.01 + slack(0.01)


def test_a_larger_alpha_fails_more_gates():
    old, new = [1.0, 1.02, 0.98, 1.01, 0.99], [1.03, 1.05, 1.01, 1.04, 1.02]  # +3 %, p about 0.07
    strict, loose = (compare_values("e", old, new, RULE, alpha) for alpha in (0.01, 0.2))
    assert strict.p_value == loose.p_value and 0.01 < strict.p_value < 0.2
    assert not strict.regression and loose.regression


def test_the_message_gives_effect_ci_and_p_value():
    c = compare_values("e", [1.0, 1.01, 0.99, 1.0], [1.1, 1.11, 1.09, 1.1], RULE)
    assert c.regression and c.ci_low < c.ratio < c.ci_high
    text = c.message()
    assert "(+10.0 %, catches +3 %, margin +1 %; 95 % CI +8." in text and "p = " in text and "< 0.01" in text
    assert "one-sided Welch t on log cycle values, 4 vs 4 saved cycles" in text and text.endswith("REGRESSION")


def test_a_decrease_rule_tests_the_other_tail():
    rule = parse_rules("tokens_per_s:-10%")[0]
    assert compare_values("e", [100, 101, 99], [80, 81, 79], rule).regression
    assert not compare_values("e", [100, 101, 99], [120, 121, 119], rule).regression
