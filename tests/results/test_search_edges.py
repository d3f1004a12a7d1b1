"""The search's statistics at their edges, each checked against an independent computation (scipy.stats) or a
figure worked out by hand: the moderated variances, the one-sample and Welch tests, the stop and budget rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import polygamma

from pytest_llenergy.config.search import SearchConstraint
from pytest_llenergy.results.search import (
    NO_PRIOR,
    Drop,
    Observation,
    RaceRules,
    RaceState,
    half_width_rel,
    one_sided_p,
    race,
    ratio_bound,
)
from pytest_llenergy.results.search_variance import (
    MAX_PRIOR_DF,
    VariancePrior,
    _trigamma_inverse,
    fit_prior,
    moderated_welch,
)


@pytest.mark.parametrize("x", [2e-6, 1e-3, 0.3, 1.0, 4.0, 250.0, 9e6])
def test_trigamma_inverse_solves_trigamma_of_y_equals_x(x):
    y = _trigamma_inverse(x)
    assert float(polygamma(1, y)) == pytest.approx(x, rel=1e-7)


def test_trigamma_inverse_uses_the_asymptotes_outside_its_range():
    assert _trigamma_inverse(4e8) == 1 / math.sqrt(4e8)  # trigamma(y) ~ 1/y^2 for small y
    assert _trigamma_inverse(5e-7) == 1 / 5e-7  # trigamma(y) ~ 1/y for large y


def test_moderate_without_a_prior_is_the_sample_variance_and_with_one_the_weighted_mean():
    logs = np.array([0.0, 2.0])  # s^2 = 2 on 1 degree of freedom
    assert NO_PRIOR.moderate(logs) == (2.0, 1.0)
    assert VariancePrior(4.0, 2.0).moderate(logs) == (pytest.approx((2 * 4.0 + 1 * 2.0) / 3), 3.0)
    assert VariancePrior(4.0, 0.0).moderate(np.array([0.0, 1.0, 2.0])) == (1.0, 2.0)  # d0 = 0: no moderation
    assert VariancePrior(4.0, 1.0).moderate(logs) == (3.0, 2.0)  # one prior degree of freedom already counts


def test_fit_prior_needs_three_positive_spreads():
    two = [np.array([0.0, 1.0]), np.array([0.0, 2.0])]
    assert fit_prior(two) == VariancePrior()
    padded = [*two, np.array([1.0]), np.array([3.0, 3.0]), np.array([])]  # one value, zero spread, none: ignored
    assert fit_prior(padded) == VariancePrior()
    assert fit_prior([*two, np.array([0.0, 3.0])]).d0 > 0


def test_fit_prior_on_equal_spreads_is_the_common_variance_corrected_for_the_log_bias():
    """Identical sample variances: no excess spread, so d0 is the cap and s0^2 = exp(E), where E = log s^2 -
    digamma(d/2) + log(d/2) undoes the mean of log chi^2 (d = 1: s^2 x 0.5 / exp(digamma(0.5)) = s^2 x 3.5621)."""
    groups = [np.array([0.0, 0.2]) + i for i in range(5)]  # s^2 = 0.02 each, d = 1
    prior = fit_prior(groups)
    assert prior.d0 == MAX_PRIOR_DF
    assert prior.s0_sq == pytest.approx(0.02 * 3.5621, rel=1e-4)


def test_fit_prior_with_excess_spread_by_hand():
    """Four variances a factor e^3 apart on 1 degree of freedom each: E = log s^2 - digamma(1/2) + log(1/2) has
    sample variance 15 (logs 0, 3, 6, 9), minus trigamma(1/2) = pi^2 / 2 leaves 10.065 of excess, so d0 solves
    trigamma(d0 / 2) = 10.065 (solved here by bisection) and s0^2 = exp(mean E + digamma(d0/2) - log(d0/2))."""
    from scipy.optimize import brentq
    from scipy.special import digamma

    groups = [np.array([0.0, math.sqrt(2 * math.exp(3 * k))]) for k in range(4)]  # s^2 = e^0, e^3, e^6, e^9
    excess = 15.0 - math.pi**2 / 2
    d0 = 2 * brentq(lambda y: float(polygamma(1, y)) - excess, 1e-6, 10.0)
    e_mean = 4.5 - float(digamma(0.5)) + math.log(0.5)
    prior = fit_prior(groups)
    assert prior.d0 == pytest.approx(d0, rel=1e-6)
    assert prior.s0_sq == pytest.approx(math.exp(e_mean + float(digamma(d0 / 2)) - math.log(d0 / 2)), rel=1e-6)


def test_fit_prior_recovers_the_prior_it_was_drawn_from():
    """Variances drawn as s0^2 d0 / chi^2_d0 (the model's prior), then sample variances on 3 degrees of
    freedom: 4000 configurations give back d0 and s0^2 within sampling error."""
    rng = np.random.default_rng(11)
    d0, s0_sq, n = 8.0, 0.01, 4
    sigma_sq = s0_sq * d0 / rng.chisquare(d0, 4000)
    groups = [rng.normal(0.0, math.sqrt(v), n) for v in sigma_sq]
    prior = fit_prior(groups)
    assert prior.d0 == pytest.approx(d0, rel=0.25)
    assert prior.s0_sq == pytest.approx(s0_sq, rel=0.06)
    same = [rng.normal(0.0, 0.1, n) for _ in range(4000)]  # one true variance: d0 at (or near) its cap
    assert fit_prior(same).d0 > 20 and fit_prior(same).s0_sq == pytest.approx(0.01, rel=0.05)  # d0: 22 to the cap over seeds


def test_moderated_welch_without_a_prior_is_scipys_welch_test():
    a, b = np.log([1.00, 1.02, 0.99, 1.01]), np.log([1.03, 1.06, 1.05])
    p, diff = moderated_welch(a, b, VariancePrior())
    expected = stats.ttest_ind(b, a, equal_var=False, alternative="greater").pvalue
    assert p == pytest.approx(expected, rel=1e-9) and diff == pytest.approx(b.mean() - a.mean())


def test_moderated_welch_with_a_prior_by_hand():
    a, b = np.array([0.0, 0.2]), np.array([0.3, 0.5])  # s^2 = 0.02 each, d = 1
    prior = VariancePrior(0.04, 3.0)
    v = (3 * 0.04 + 0.02) / 4  # 0.035 on 4 degrees of freedom, both
    se = math.sqrt(v / 2 + v / 2)
    p, diff = moderated_welch(a, b, prior)
    assert diff == pytest.approx(0.3)
    assert p == pytest.approx(stats.t.sf(0.3 / se, 8.0), rel=1e-9)  # Welch df: (2q)^2 / (2 q^2 / 4) = 8


def test_moderated_welch_without_spread_decides_by_the_sign_alone():
    same = np.array([1.0, 1.0])
    assert moderated_welch(same, same + 0.1, VariancePrior()) == (0.0, pytest.approx(0.1))
    assert moderated_welch(same, same, VariancePrior())[0] == 1.0  # equal means: no evidence b is higher
    assert moderated_welch(same, same - 0.1, VariancePrior())[0] == 1.0


@pytest.mark.parametrize("above", [True, False])
def test_one_sided_p_without_a_prior_is_scipys_one_sample_t(above):
    logs = np.log([1.10, 1.13, 1.08, 1.12, 1.15])
    bound = math.log(1.1)
    expected = stats.ttest_1samp(logs, bound, alternative="greater" if above else "less").pvalue
    assert one_sided_p(logs, bound, above=above) == pytest.approx(expected, rel=1e-9)


def test_one_sided_p_with_a_prior_uses_the_moderated_variance_and_its_degrees_of_freedom():
    logs = np.array([0.1, 0.3])  # mean 0.2, s^2 = 0.02
    prior = VariancePrior(0.02 / 4, 6.0)  # moderated: (6 x 0.005 + 0.02) / 7 on 7 df
    se = math.sqrt((6 * 0.005 + 0.02) / 7 / 2)
    assert one_sided_p(logs, 0.0, above=True, prior=prior) == pytest.approx(stats.t.sf(0.2 / se, 7.0), rel=1e-9)


def test_one_sided_p_at_the_bound_without_spread_rejects_neither_side():
    flat = np.zeros(3) + 0.5
    assert one_sided_p(flat, 0.5, above=True) == 1.0 and one_sided_p(flat, 0.5, above=False) == 1.0


@pytest.mark.parametrize("logs", [np.array([9.0]), np.array([])])
def test_one_sided_p_of_fewer_than_two_values_is_no_evidence(logs):
    assert one_sided_p(logs, 0.0, above=True) == 1.0 and one_sided_p(logs, 0.0, above=False) == 1.0


def test_half_width_rel_is_the_t_interval_on_logs():
    logs = np.array([0.0, 0.02])
    hw = stats.t.ppf(0.975, 1) * 0.02 / math.sqrt(2) / math.sqrt(2)  # sd 0.01414 / sqrt(2)
    assert half_width_rel(logs, 0.05) == pytest.approx(math.expm1(hw), rel=1e-9)  # 0.1355
    assert half_width_rel(np.array([0.3]), 0.05) == math.inf
    assert half_width_rel(np.array([0.1, 0.1]), 0.05) == 0.0


def test_ratio_bound_is_the_one_sided_welch_upper_bound_of_the_ratio():
    best, other = np.log([1.00, 1.01, 0.99]), np.log([1.02, 1.04, 1.03, 1.01])
    qa, qb = best.var(ddof=1) / 3, other.var(ddof=1) / 4
    df = (qa + qb) ** 2 / (qa**2 / 2 + qb**2 / 3)
    expected = math.exp(best.mean() - other.mean() + stats.t.ppf(0.95, df) * math.sqrt(qa + qb))
    assert ratio_bound(best, other, 0.05) == pytest.approx(expected, rel=1e-9)
    assert ratio_bound(np.log([2.0, 2.0]), np.log([1.0, 1.0]), 0.05) == pytest.approx(2.0)  # no spread: the ratio


def _round(r: int, values: dict[str, float], gpu_s: float = 1.0, steady: float | None = None) -> list[Observation]:
    return [Observation(c, r, True, v, gpu_s=gpu_s, steady_gpu_s=steady) for c, v in values.items()]


def test_rules_take_every_field_of_the_search_section():
    from pytest_llenergy.config.search import SearchConfig

    search = SearchConfig(min_rounds=3, confidence=0.9, constraints=[{"metric": "peak_memory_mb", "max": 9000}],
                          stop={"precision": 0.05, "max_survivors": 2, "gpu_budget_s": "2min"})
    rules = RaceRules.from_search(search, max_rounds=7)
    assert rules == RaceRules(7, 3, pytest.approx(0.1), 0.05, 2, 120.0, tuple(search.constraints))


def test_a_failed_item_names_the_last_line_of_its_error_cut_to_160_characters():
    error = "Traceback (most recent call last):\n  ...\nRuntimeError: " + "x" * 300
    obs = [Observation("a", 1, False, None, error=error), Observation("b", 1, False, None)]
    state = race(RaceRules(max_rounds=3), ["a", "b", "c"], obs)
    assert state.dropped["a"].reason == "its item failed in round 1: " + ("RuntimeError: " + "x" * 300)[:160]
    assert state.dropped["b"].reason == "its item failed in round 1" and state.dropped["b"].p_value is None
    assert state.alive == ["c"] and state.rounds == 1  # c has no item yet: it stays


def test_a_configuration_without_an_item_this_round_does_not_stop_the_gate():
    obs = [Observation("a", 1, True, 1.0), Observation("c", 1, False, None, error="boom")]
    state = race(RaceRules(max_rounds=3), ["b", "a", "c"], obs)  # b (no item yet) comes first
    assert state.dropped["c"] == Drop("c", 1, "failed", "its item failed in round 1: boom")
    assert state.alive == ["b", "a"] and state.configs == ["b", "a", "c"]


def test_every_missing_constrained_figure_is_named():
    limits = (SearchConstraint(metric="batch_latency_p95_s", max=1.0), SearchConstraint(metric="peak_memory_mb", max=1e4))
    state = race(RaceRules(max_rounds=3, constraints=limits), ["a"], [Observation("a", 1, True, 1.0)])
    assert state.dropped["a"] == Drop("a", 1, "unmeasured", "round 1 does not report batch_latency_p95_s, peak_memory_mb")


def test_no_observations_no_rounds_and_every_round_before_until_counts():
    empty = race(RaceRules(max_rounds=5), ["a", "b"], [])
    assert (empty.rounds, empty.stopped, empty.alive) == (0, None, ["a", "b"])
    obs = [Observation(c, r, True, 1.0 + 0.01 * r) for c in "ab" for r in (1, 2)]
    later = race(RaceRules(max_rounds=5), ["a", "b"], obs, until_round=5)
    assert later.rounds == 4  # rounds 3 and 4 had no items: still rounds of the race
    failing = obs + [Observation("a", 3, False, None)]
    assert "a" in race(RaceRules(max_rounds=5), ["a", "b"], failing, until_round=3).alive  # round 3 is not read


def test_no_configuration_left_stops_the_race():
    state = race(RaceRules(max_rounds=5), ["a"], [Observation("a", 1, False, None)])
    assert state.stopped == "no configuration left" and state.stop_round == 1


def test_a_limit_that_cannot_be_judged_does_not_hide_a_broken_one():
    limits = (SearchConstraint(metric="peak_memory_mb", max=1e4), SearchConstraint(metric="batch_latency_p95_s", max=0.1))
    obs = [Observation(c, r, True, 1.0 + 0.001 * r, {"peak_memory_mb": 0.0, "batch_latency_p95_s": lat * (1 + 0.01 * r)})
           for c, lat in (("slow", 1.0), ("fast", 0.01)) for r in (1, 2, 3)]
    state = race(RaceRules(max_rounds=3, constraints=limits), ["slow", "fast"], obs)
    assert state.dropped["slow"].kind == "constraint" and "batch_latency_p95_s <= 0.1" in state.dropped["slow"].reason


def _equivalence(rounds: int, b_noise: float, b_shift: float) -> RaceState:
    values = {"a": [1.0 * (1 + 0.0005 * (-1) ** r) for r in range(rounds)],
              "b": [(1 + b_shift) * (1 + b_noise * (-1) ** r) for r in range(rounds)]}
    return race(RaceRules(max_rounds=20, precision=0.02), list(values), _two_rounds(values))


def test_survivors_stop_as_equivalent_only_when_each_is_within_precision_with_confidence():
    equivalent = _equivalence(2, 0.0005, 0.0)
    assert equivalent.stopped.startswith("the 2 survivors are within 2.0% of the pick")
    assert equivalent.stop_kind == "precision"
    undecided = _equivalence(4, 0.05, 0.03)  # 3 % higher on 5 % noise: neither dropped nor within 2 %
    assert undecided.stopped is None and undecided.alive == ["a", "b"]
    values = {"a": [1.0, 1.0005, 0.9995], "b": [1.0]}  # b joined late: one value is no evidence of equivalence
    obs = [Observation("a", r, True, v, gpu_s=1.0) for r, v in enumerate(values["a"], start=1)]
    obs.append(Observation("b", 3, True, 1.0))
    assert race(RaceRules(max_rounds=20, precision=0.02), ["a", "b"], obs).stopped is None

    limits = (SearchConstraint(metric="batch_latency_p95_s", max=1.0), SearchConstraint(metric="peak_memory_mb", max=1e4))
    obs = [Observation("zero", 1, True, 0.0), Observation("negative", 1, True, -1.0),
           Observation("partial", 1, True, 1.0, {"batch_latency_p95_s": 0.5}),
           Observation("full", 1, True, 1.0, {"batch_latency_p95_s": 0.5, "peak_memory_mb": 10.0})]
    state = race(RaceRules(max_rounds=3, constraints=limits), ["zero", "negative", "partial", "full"], obs)
    assert state.dropped["zero"] == Drop("zero", 1, "unmeasured", "round 1 reports no positive objective figure")
    assert state.dropped["negative"].kind == "unmeasured"
    assert state.dropped["partial"].reason == "round 1 does not report peak_memory_mb"
    assert state.alive == ["full"]


def _two_rounds(values: dict[str, list[float]]) -> list[Observation]:
    return [Observation(c, r, True, v, gpu_s=1.0) for c, series in values.items() for r, v in enumerate(series, start=1)]


def test_a_drop_needs_p_times_the_tests_at_most_alpha_and_exactly_alpha_is_enough():
    values = {"best": [1.0, 1.02], "worse": [1.10, 1.13], "third": [1.0, 1.03]}
    logs = {c: np.log(v) for c, v in values.items()}
    incumbent = min(values, key=lambda c: (logs[c].mean(), c))
    assert incumbent == "best"
    prior = fit_prior(list(logs.values()))
    p, _ = moderated_welch(logs["best"], logs["worse"], prior)
    family = 2  # the two other survivors, no constraints
    exact = race(RaceRules(max_rounds=2, alpha=p * family), list(values), _two_rounds(values))
    assert exact.dropped["worse"].kind == "worse" and exact.dropped["worse"].p_value == pytest.approx(p)
    assert f"x {family} tests <=" in exact.dropped["worse"].reason
    assert "worse" in race(RaceRules(max_rounds=2, alpha=p * family * 0.999), list(values), _two_rounds(values)).alive
    assert exact.tests == 2  # one comparison each for worse and third; the incumbent is tested against nobody


def test_the_family_counts_every_other_survivor_and_every_constraint():
    values = {"best": [1.0, 1.02], "worse": [1.10, 1.13], "third": [1.0, 1.03]}
    limit = (SearchConstraint(metric="peak_memory_mb", max=1e9),)
    obs = [Observation(c, r, True, v, {"peak_memory_mb": 10.0 * r}) for c, series in values.items()
           for r, v in enumerate(series, start=1)]
    state = race(RaceRules(max_rounds=2, alpha=0.5, constraints=limit), list(values), obs)
    assert "x 3 tests <= 0.5" in state.dropped["worse"].reason


def test_equal_means_pick_the_incumbent_by_name():
    values = {"b": [1.0, 1.02], "a": [1.02, 1.0]}
    assert race(RaceRules(max_rounds=5), ["b", "a"], _two_rounds(values)).incumbent == "a"


def test_a_constraint_figure_that_is_not_positive_never_counts_as_met():
    limit = (SearchConstraint(metric="peak_memory_mb", max=100.0),)
    obs = [Observation(c, r, True, v, {"peak_memory_mb": mem}) for c, v, mem in
           (("a", 1.0, 0.0), ("b", 2.0, 10.0)) for r in (1, 2, 3)]
    state = race(RaceRules(max_rounds=3, constraints=limit), ["a", "b"], obs)
    assert state.incumbent == "b" and "a" in state.alive  # a's zero readings are no evidence for the limit


def test_stop_at_exactly_max_survivors_once_the_pick_is_precise():
    values = {"a": [1.0, 1.001, 0.999], "b": [1.0005, 1.0, 1.0], "c": [1.001, 1.0003, 1.0]}  # none decided
    rules = RaceRules(max_rounds=9, max_survivors=3, precision=0.02)
    state = race(rules, list(values), _two_rounds(values), until_round=3)
    assert state.stopped.startswith("3 configuration(s) left (stop.max_survivors 3); the pick's CI is within ±2.0%")
    assert state.stop_round == 2
    loose = race(RaceRules(max_rounds=9, max_survivors=3, precision=0.0001), list(values), _two_rounds(values))
    assert loose.stopped is None  # the pick's CI is wider than the precision: it runs on


def test_the_most_rounds_stop_the_race_and_later_rounds_are_not_read():
    values = {"a": [1.0, 1.3, 0.7, 5.0], "b": [1.1, 0.8, 1.4, 0.1]}
    state = race(RaceRules(max_rounds=3), list(values), _two_rounds(values))
    assert state.stopped == "the most rounds (3, the campaign's cycles) are done" and state.rounds == 3
    assert state.spent_s == 6.0  # round 4's items are not counted either


def test_the_budget_allows_a_round_that_fits_exactly_and_counts_dropped_configurations_spending():
    obs = _round(1, {"a": 1.0, "b": 1.01, "c": 9.0}, gpu_s=2.0) + _round(2, {"a": 1.01, "b": 1.0, "c": 9.1}, gpu_s=2.0)
    # c leaves in round 2 (worse), but its items were paid: 12 s spent; round 3 costs a + b = 4 s
    fits = race(RaceRules(max_rounds=9, gpu_budget_s=16.0), ["a", "b", "c"], obs)
    assert "c" in fits.dropped and fits.spent_s == 12.0 and fits.stopped is None
    over = race(RaceRules(max_rounds=9, gpu_budget_s=15.9), ["a", "b", "c"], obs)
    assert over.stopped == "GPU budget: 12 s spent + 4 s for the next round > 16 s (stop.gpu_budget_s)"


def test_the_next_round_is_priced_at_each_survivors_latest_item():
    obs = (_round(1, {"a": 1.0, "b": 1.01}, gpu_s=1.0, steady=5.0)
           + _round(2, {"a": 1.01, "b": 1.0}, gpu_s=1.0, steady=1.0))
    state = race(RaceRules(max_rounds=9, gpu_budget_s=6.0), ["a", "b"], obs)
    assert state.stopped is None  # 4 s spent + 2 x 1 s (round 2's cost, not round 1's 5 s) <= 6 s
    late = [Observation("c", 2, True, 1.0, gpu_s=1.0)]  # c ran only round 2: its cost is that item's
    state = race(RaceRules(max_rounds=9, gpu_budget_s=7.5), ["a", "b", "c"], obs + late)
    assert state.stopped is not None and "+ 3 s for the next round" in state.stopped
    unseen = race(RaceRules(max_rounds=9, gpu_budget_s=6.0), ["a", "b", "d"], obs)  # d has no item yet: priced at 0
    assert unseen.stopped is None


# -- the figures a race reads from each result (results/search_data.py) ------------------------------------------------


def _result(**kwargs):
    from .factory import make_result

    return make_result(**kwargs)


def test_per_request_objectives_divide_by_the_prompts_when_nothing_was_served():
    from pytest_llenergy.results.search_data import objective_value

    from .factory import make_config

    result = _result(energy_j=100.0, adjusted_j=60.0, config=make_config(num_prompts=8))
    assert objective_value(result, "energy_per_request") == 100.0 / 8
    assert objective_value(result, "adjusted_energy_per_request") == 60.0 / 8
    result.config["workload"]["num_prompts"] = 1
    assert objective_value(result, "energy_per_request") == 100.0  # one prompt, one request
    for prompts in (0, None, "8"):
        result.config["workload"]["num_prompts"] = prompts
        assert objective_value(result, "energy_per_request") is None  # no count: no figure, never a division by 0
    result.config["workload"] = None
    assert objective_value(result, "energy_per_request") is None
    assert objective_value(_result(energy_j=None), "energy_per_output_token") is None


def test_constraint_figures_come_from_the_right_table():
    from pytest_llenergy.results.phase_schema import ServingStats
    from pytest_llenergy.results.schema import LatencyStats
    from pytest_llenergy.results.search_data import constraint_value

    result = _result()
    result.latency = LatencyStats(mode="streaming", batch_latency_s_mean=0.5, batch_latency_s_p95=0.9, itl_ms_p99=7.0,
                                  ttft_ms_mean=30.0)
    row = {"tokens_per_s": 900.0, "peak_memory_mb": None, "mean_power_w": 250.0}
    assert constraint_value(result, "batch_latency_mean_s", row) == 0.5
    assert constraint_value(result, "itl_p99_ms", row) == 7.0 and constraint_value(result, "ttft_mean_ms", row) == 30.0
    assert constraint_value(result, "tokens_per_s", row) == 900.0 and constraint_value(result, "mean_power_w", row) == 250.0
    assert constraint_value(result, "peak_memory_mb", row) is None and constraint_value(result, "output_tokens_per_s", row) is None
    assert constraint_value(result, "e2e_p50_ms", row) is None  # end to end exists only for served workloads
    result.serving = ServingStats(process="poisson", requests=4, itl_ms={"p99": 9.0})
    assert constraint_value(result, "itl_p99_ms", row) == 9.0  # the served figure first
    assert constraint_value(result, "ttft_mean_ms", row) == 30.0  # not served: the latency table's
    result.latency = None
    assert constraint_value(result, "batch_latency_p95_s", row) is None
    assert constraint_value(result, "batch_latency_mean_s", row) is None and constraint_value(result, "ttft_mean_ms", row) is None


def test_gpu_seconds_count_every_gpu_and_fall_back_to_the_windows():
    from pytest_llenergy.results.schema import DeviceEnergy, ItemTiming
    from pytest_llenergy.results.search_data import gpu_seconds, steady_gpu_seconds

    result = _result(duration_s=2.0)
    assert gpu_seconds(result) == 2.0  # no timing: the windows' durations
    result.energy.devices = [DeviceEnergy(device=d, energy_j=1.0) for d in ("gpu0", "gpu1", "cpu0")]
    result.timing = ItemTiming(wall_s=10.0, load_s=2.0, warmup_s=3.0)
    assert gpu_seconds(result) == 20.0 and steady_gpu_seconds(result) == 10.0  # two GPUs; the CPU is no GPU
    result.timing = ItemTiming(wall_s=4.0, load_s=3.0, warmup_s=3.0)
    assert steady_gpu_seconds(result) == 0.0  # never negative
    result.timing = ItemTiming(wall_s=None, load_s=3.0)
    assert steady_gpu_seconds(result) == gpu_seconds(result) == 4.0  # the windows' 2 s on two GPUs
    result.timing = ItemTiming(wall_s=0.0, load_s=1.0)
    assert steady_gpu_seconds(result) == gpu_seconds(result) == 0.0  # never a division by a zero wall time
    result.timing, result.windows, result.energy = None, [], None
    assert gpu_seconds(result) == 2.0  # no window either: the item's duration on one device
    result.duration_s = 0.0
    assert gpu_seconds(result) == 0.0


def test_an_observation_of_a_failed_item_carries_no_figures_but_its_cost():
    from pytest_llenergy.config.search import SearchConfig
    from pytest_llenergy.results.search_data import observation

    search = SearchConfig(objective="energy_per_output_token", constraints=[{"metric": "tokens_per_s", "min": 1}])
    from pytest_llenergy.results.schema import ItemTiming

    result = _result(cycle=3)
    result.timing = ItemTiming(wall_s=8.0, load_s=3.0, warmup_s=1.0)
    ok = observation(result, search)
    assert (ok.round, ok.passed, ok.error, ok.gpu_s, ok.steady_gpu_s, ok.round_cost) == (3, True, None, 8.0, 4.0, 4.0)
    assert ok.objective == pytest.approx(100.0 / 128) and ok.constraints["tokens_per_s"] == pytest.approx(384 / 2.0)
    failed = observation(_result(status="failed"), search)
    assert (failed.passed, failed.objective, failed.constraints, failed.error) == (False, None, {}, "boom")
    assert failed.gpu_s == 2.0


def test_a_missing_or_damaged_spec_reads_as_no_search(tmp_path):
    from pytest_llenergy.config.search import SearchConfig
    from pytest_llenergy.results.search_data import SearchSpec, read_spec, write_spec
    from pytest_llenergy.results.store import RunDirectory

    assert read_spec(tmp_path) is None
    spec = SearchSpec(SearchConfig(min_rounds=3, stop={"gpu_budget_s": 60}), ["a", "b"], "b", 5)
    write_spec(tmp_path, spec)
    back = read_spec(tmp_path)
    assert back == spec and back.rules == RaceRules(5, 3, pytest.approx(0.05), 0.02, 1, 60.0, (), "b")
    path = RunDirectory(tmp_path).search_spec_path
    for damaged in ("{", "[]", '{"search": {}, "configs": ["a"], "reference": "a"}', '{"search": {"min_rounds": 1}, '
                    '"configs": [], "reference": "", "max_rounds": 2}'):
        path.write_text(damaged)
        assert read_spec(tmp_path) is None


def test_the_observation_cache_rereads_a_result_only_when_its_file_changes(tmp_path):
    import os

    from pytest_llenergy.config.search import SearchConfig
    from pytest_llenergy.results.search_data import ObservationCache

    from .factory import write_run

    run = write_run(tmp_path, {"a": [1.0, 2.0], "b": [3.0]})
    cache = ObservationCache(SearchConfig(objective="energy_per_output_token"))
    first = cache.read([run.path], {"a", "b"})
    assert sorted((o.config, o.round) for o in first) == [("a", 1), ("a", 2), ("b", 1)]
    assert sorted((o.config, o.round) for o in cache.read([run.path], {"a"})) == [("a", 1), ("a", 2)]
    [path] = [p for p in run.result_files() if "b" in p.name]
    data, stamp = path.read_text(), path.stat().st_mtime_ns
    assert '"status": "passed"' in data
    path.write_text(data.replace('"status": "passed"', '"status": "failed"'))
    os.utime(path, ns=(stamp, stamp))  # same stamp: the cached figure stands
    assert [o.passed for o in cache.read([run.path], {"b"})] == [True]
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    [b] = cache.read([run.path], {"b"})
    assert b.passed is False
    path.write_text("{not json")
    os.utime(path, ns=(stamp + 2 * 10**9, stamp + 2 * 10**9))
    assert sorted(o.config for o in cache.read([run.path], {"a", "b"})) == ["a", "a"]  # unreadable: no observation
    path.unlink()
    assert [o.config for o in cache.read([run.path], {"a", "b"})] == ["a", "a"]
    (path.parent / "0-vanished.json").symlink_to(path.parent / "nowhere.json")  # listed, gone when read: skipped
    assert [o.config for o in cache.read([run.path], {"a", "b"})] == ["a", "a"]


def test_intervals_of_a_race_are_at_half_its_alpha():
    assert RaceRules(max_rounds=5, alpha=0.05).interval_alpha == 0.025
    logs = np.log([1.0, 1.01, 0.99, 1.0, 1.005])  # plain 95 % half-width 0.93 %, at the 97.5 % quantile 1.17 %
    assert half_width_rel(logs, 0.05) < 0.01 < half_width_rel(logs, 0.025)
    stopped = race(RaceRules(max_rounds=9, precision=0.01), ["a"], [Observation("a", r, True, v) for r, v in
                                                                       enumerate(np.exp(logs), start=1)])
    assert stopped.stopped is None  # the plain interval meets ±1 %, the stopping-adjusted one does not
    assert race(RaceRules(max_rounds=9, precision=0.012), ["a"], [Observation("a", r, True, v) for r, v in
                enumerate(np.exp(logs), start=1)]).stopped.startswith("1 configuration(s) left")


def test_a_dropped_reference_runs_until_it_has_three_rounds_and_no_further():
    values = {"best": [1.0, 1.01, 0.99, 1.0], "ref": [2.0, 2.02, 1.98, 2.01], "c": [1.0, 1.01, 1.0, 1.01]}
    obs = _two_rounds(values)
    rules = RaceRules(max_rounds=9, reference="ref", precision=1e-6)
    after2 = race(rules, list(values), obs, until_round=3)
    assert after2.dropped["ref"].round == 2 and after2.skip_reason("ref") is None  # its round 3 runs
    assert after2.skip_reason("c") is None and "ref" not in after2.alive
    after3 = race(rules, list(values), obs, until_round=4)
    assert after3.skip_reason("ref").startswith("search: dropped after round 2: worse than best")
    assert race(RaceRules(max_rounds=9, precision=1e-6), list(values), obs, until_round=3).skip_reason("ref") is not None
    assert after3.spent_s == 9.0 and "ref" not in after3.alive  # its third item was paid, never raced


def test_the_references_extra_round_is_priced_and_a_stopped_race_runs_none():
    values = {"best": [1.0, 1.01], "ref": [2.0, 2.02], "c": [1.0, 1.01]}
    obs = _two_rounds(values)  # 6 s spent; round 3: best, c and the reference, 3 s
    assert race(RaceRules(max_rounds=9, reference="ref", gpu_budget_s=9.0), list(values), obs).stopped is None
    over = race(RaceRules(max_rounds=9, reference="ref", gpu_budget_s=8.5), list(values), obs)
    assert "+ 3 s for the next round" in over.stopped and over.skip_reason("ref").startswith("search: dropped")


def test_the_stop_kind_sets_the_level_of_the_answers_intervals():
    precise = race(RaceRules(max_rounds=9, precision=0.05), ["a"], [Observation("a", r, True, 1.0 + 0.001 * r)
                                                                    for r in (1, 2, 3)])
    assert precise.stop_kind == "precision" and precise.interval_alpha(RaceRules(max_rounds=9)) == 0.025
    rounds = race(RaceRules(max_rounds=2, precision=1e-9), ["a"], [Observation("a", r, True, 1.0 + 0.1 * r) for r in (1, 2)])
    assert rounds.stop_kind == "rounds" and rounds.interval_alpha(RaceRules(max_rounds=2)) == 0.05
    obs = [Observation(c, r, True, 1.0 + 0.01 * r, gpu_s=1.0) for c in "ab" for r in (1, 2)]
    budget = race(RaceRules(max_rounds=9, precision=1e-9, gpu_budget_s=4.5), ["a", "b"], obs)
    assert budget.stop_kind == "budget" and budget.interval_alpha(RaceRules(max_rounds=9)) == 0.05
    empty = race(RaceRules(max_rounds=9), ["a"], [Observation("a", 1, False, None)])
    assert empty.stop_kind == "empty"
    assert race(RaceRules(max_rounds=9), ["a"], []).stop_kind is None
