"""Every gate rule on both sides of its threshold: budgets per cycle and across cycles
(results/budgets.py) and the comparison with a saved run (results/compare.py) at n = 1, 2, 3, 10."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from pytest_llenergy.config.budgets import Budget
from pytest_llenergy.results.budgets import check_interval, check_point, select_matches
from pytest_llenergy.results.compare import (
    DEFAULT_ALPHA,
    MARGIN_FRACTION,
    MIN_CYCLES_FOR_TEST,
    compare_records,
    compare_values,
    format_comparisons,
    parse_rules,
    welch_test,
)

EPT_RAW, EPT_ADJ = "energy_per_output_token_j", "adjusted_energy_per_output_token_j"


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


def below(x: float) -> float:
    return math.nextafter(x, -math.inf)


def budget(tolerance: float = 0.0, adjusted: bool = True, **limits: float) -> Budget:
    return Budget(limits or {"energy_per_output_token": 0.5}, tolerance, adjusted)


class TestPerCycleBudget:
    """check_point: one cycle's figure against limit x (1 + tolerance); equal passes."""

    @pytest.mark.parametrize("tolerance", [0.0, 0.1, 0.25])
    @pytest.mark.parametrize(("adjusted", "column"), [(True, EPT_ADJ), (False, EPT_RAW)])
    def test_exactly_at_the_allowance_passes_and_just_above_fails(self, tolerance, adjusted, column):
        b = budget(tolerance, adjusted)
        allowed = 0.5 * (1 + tolerance)
        at = check_point(b, {column: allowed})
        assert not at.failed and at.checks[0]["allowed"] == allowed and at.checks[0]["adjusted"] is adjusted
        over = check_point(b, {column: above(allowed)})
        assert over.failed and len(over.breaches) == 1
        assert not check_point(b, {column: below(allowed)}).failed

    def test_between_the_limit_and_the_tolerance_passes(self):
        assert not check_point(budget(0.1), {EPT_ADJ: 0.54}).failed  # 8 % over the limit, 10 % tolerated
        assert check_point(budget(0.1), {EPT_ADJ: 0.56}).failed
        assert check_point(budget(0.0), {EPT_ADJ: 0.54}).failed

    def test_the_breach_sentence_names_value_limit_excess_basis_and_tolerance(self):
        v = check_point(budget(0.1), {EPT_ADJ: 0.6}, n=1)
        assert v.breaches == ["energy per output token 0.6 J > budget 0.5 J (+20.0 %, adjusted, n=1, tolerance 10%)"]
        v = check_point(budget(adjusted=False), {EPT_RAW: 0.75})
        assert v.breaches == ["energy per output token 0.75 J > budget 0.5 J (+50.0 %, raw, n=1)"]

    def test_adjusted_budget_prefers_the_adjusted_figure_over_the_raw_one(self):
        # raw over, adjusted within: the adjusted figure decides
        assert not check_point(budget(), {EPT_ADJ: 0.4, EPT_RAW: 0.9}).failed
        assert check_point(budget(), {EPT_ADJ: 0.6, EPT_RAW: 0.1}).failed
        # a raw budget ignores the adjusted figure
        assert check_point(budget(adjusted=False), {EPT_ADJ: 0.4, EPT_RAW: 0.9}).failed

    def test_without_an_adjusted_figure_the_raw_one_decides_and_says_so(self):
        v = check_point(budget(), {EPT_ADJ: None, EPT_RAW: 0.9})
        assert v.failed and "raw: no baseline-adjusted figure" in v.breaches[0]
        assert v.checks[0]["adjusted"] is False and v.checks[0]["basis"].startswith("raw: no baseline")
        assert not check_point(budget(), {EPT_RAW: 0.5}).failed

    def test_a_metric_that_has_no_adjusted_figure_is_plain_raw(self):
        v = check_point(Budget({"mean_power": 300.0}), {"mean_power_w": 301.0})
        assert v.checks[0]["basis"] == "raw" and v.breaches == ["mean power 301 W > budget 300 W (+0.3 %, raw, n=1)"]

    def test_an_unmeasured_figure_fails_naming_it(self):
        v = check_point(budget(), {})
        assert v.breaches == ["energy per output token: not measured (adjusted), cannot check budget 0.5 J"]
        assert v.checks[0]["value"] is None

    def test_every_limit_is_checked(self):
        b = Budget({"energy": 10.0, "mean_power": 300.0}, adjusted=False)
        v = check_point(b, {"energy_j": 11.0, "mean_power_w": 310.0})
        assert [c["metric"] for c in v.checks] == ["energy", "mean_power"] and len(v.breaches) == 2
        assert [c["n"] for c in v.checks] == [1, 1]
        v = check_point(b, {"energy_j": 9.0, "mean_power_w": 310.0}, n=4)
        assert v.breaches == ["mean power 310 W > budget 300 W (+3.3 %, raw, n=4)"]


class TestAcrossCycles:
    """check_interval: fails only when the CI's low bound exceeds limit x (1 + tolerance)."""

    def test_mean_over_the_limit_with_the_ci_low_under_it_passes(self):
        v = check_interval(budget(), {EPT_ADJ: (0.6, 0.45, 3)})
        assert not v.failed
        assert v.checks[0] | {} == {"metric": "energy_per_output_token", "limit": 0.5, "allowed": 0.5, "value": 0.6,
                                    "ci_low": 0.45, "adjusted": True, "n": 3, "basis": "adjusted"}

    def test_ci_low_over_the_limit_fails_with_the_mean_and_ci_low_in_the_sentence(self):
        v = check_interval(budget(), {EPT_ADJ: (0.6, 0.55, 3)})
        assert v.breaches == ["energy per output token 0.6 J > budget 0.5 J (+20.0 %, adjusted, n=3, CI low 0.55 J)"]

    @pytest.mark.parametrize("tolerance", [0.0, 0.2])
    def test_ci_low_exactly_at_the_allowance_passes_just_above_fails(self, tolerance):
        allowed = 0.5 * (1 + tolerance)
        assert not check_interval(budget(tolerance), {EPT_ADJ: (0.9, allowed, 5)}).failed
        assert check_interval(budget(tolerance), {EPT_ADJ: (0.9, above(allowed), 5)}).failed

    def test_the_ci_low_decides_not_the_mean(self):
        # mean within, CI low over: cannot happen with a real CI, but the rule is on the low bound
        assert check_interval(budget(), {EPT_ADJ: (0.4, 0.51, 3)}).failed

    def test_without_a_ci_the_mean_decides(self):
        assert check_interval(budget(), {EPT_ADJ: (0.51, None, 1)}).failed
        assert not check_interval(budget(), {EPT_ADJ: (0.5, None, 1)}).failed

    def test_raw_columns_and_the_fallback(self):
        raw = budget(adjusted=False)
        assert check_interval(raw, {EPT_RAW: (0.7, 0.6, 3), EPT_ADJ: (0.1, 0.05, 3)}).failed
        assert not check_interval(raw, {EPT_RAW: (0.7, 0.45, 3), EPT_ADJ: (0.9, 0.8, 3)}).failed
        v = check_interval(budget(), {EPT_ADJ: (None, None, 0), EPT_RAW: (0.7, 0.6, 3)})
        assert v.failed and v.checks[0]["adjusted"] is False and "raw: no baseline-adjusted figure" in v.breaches[0]

    def test_nothing_measured_fails(self):
        v = check_interval(budget(), {})
        assert v.failed and "not measured" in v.breaches[0] and v.checks[0]["n"] == 0


@pytest.mark.parametrize(("select", "expected"), [
    ("*-bs1-*", True), ("*-bs2-*", False),
    ({"workload.batch_size": 1}, True), ({"workload.batch_size": [2, 1]}, True), ({"workload.batch_size": 2}, False),
    ({"backend": "transformers"}, True), ({"backend": "trans*"}, True), ({"backend": "vllm"}, False),
    ({"missing.path": 1}, False), ({"backend": ["vllm", "trans*"]}, True),
])
def test_select_matches(select, expected):
    config = {"backend": {"name": "transformers"}, "workload": {"batch_size": 1}}
    assert select_matches(select, "gpt2-bs1-abc", config) is expected


RISE, DROP = parse_rules("energy_per_output_token:6%")[0], parse_rules("tokens_per_s:-9%")[0]
ADJUSTED = parse_rules("adjusted_energy_per_output_token:6%")[0]


class TestCompareOneCycle:
    """Fewer than 2 cycles a side: the ratio of means against 1 + threshold / 3, equal passes."""

    @pytest.mark.parametrize("rule", [RISE, ADJUSTED, DROP], ids=str)
    @pytest.mark.parametrize(("n_old", "n_new"), [(1, 1), (1, 2), (2, 1)])  # the mean of 2 equal values is exact
    def test_at_the_bound_passes_beyond_it_fails(self, rule, n_old, n_new):
        bound = 1 + MARGIN_FRACTION * rule.threshold
        beyond = above(bound) if rule.threshold > 0 else below(bound)
        at = compare_values("e", [1.0] * n_old, [bound] * n_new, rule)
        assert at.ratio == bound and not at.regression and at.p_value is None and not at.significant
        assert (at.n_old, at.n_new) == (n_old, n_new)
        assert compare_values("e", [1.0] * n_old, [beyond] * n_new, rule).regression

    def test_a_change_between_the_margin_and_the_threshold_fails(self):
        # +3 % is past the margin (+2 %) but short of the rule's +6 %: the single-cycle bound is the margin
        assert compare_values("e", [1.0], [1.03], RISE).regression
        assert compare_values("e", [1.0], [0.95], DROP).regression  # -5 %: past -3 %, short of -9 %
        assert not compare_values("e", [1.0], [0.5], RISE).regression
        assert not compare_values("e", [1.0], [1.5], DROP).regression

    def test_the_message_says_it_is_not_significant(self):
        text = compare_values("e", [2.0], [2.1], RISE).message()
        assert text == ("energy_per_output_token 2.1 vs 2 (+5.0 %, catches +6 %, margin +2 %; n=1/1 < 2 cycles: "
                        "means compared, no significance test): REGRESSION (means only, untested)")


def welch_reference(old, new, threshold):
    """scipy's one-sided Welch t on the logs, shifted by the margin: p and the 95 % CI of the ratio."""
    a, b = np.log(old), np.log(new) - math.log1p(MARGIN_FRACTION * threshold)
    res = stats.ttest_ind(b, a, equal_var=False, alternative="greater" if threshold > 0 else "less")
    two = stats.ttest_ind(np.log(new), a, equal_var=False)
    ci = two.confidence_interval(0.95)
    return float(res.pvalue), math.exp(ci.low), math.exp(ci.high)


def cycles(n, mean, spread, seed):
    rng = np.random.default_rng(seed)
    return list(mean * np.exp(rng.normal(0, spread, n)))


class TestCompareWelch:
    """n >= 2 a side: a one-sided Welch t of "changed by at most the margin", regression when p < alpha."""

    @pytest.mark.parametrize("n", [2, 3, 10])
    @pytest.mark.parametrize("rule", [RISE, ADJUSTED, DROP], ids=str)
    def test_p_value_and_ci_are_scipys_welch_and_alpha_is_strict(self, n, rule):
        old = cycles(n, 1.0, 0.01, n)
        new = cycles(n, 1 + 2 * rule.threshold, 0.01, n + 100)
        c = compare_values("e", old, new, rule)
        p, low, high = welch_reference(old, new, rule.threshold)
        assert c.p_value == pytest.approx(p, rel=1e-9) and c.significant
        assert c.ci_low == pytest.approx(low, rel=1e-9) and c.ci_high == pytest.approx(high, rel=1e-9)
        assert (c.n_old, c.n_new, c.scale) == (n, n, "log")
        # alpha on both sides of p: p == alpha passes (p < alpha fails)
        assert not compare_values("e", old, new, rule, alpha=c.p_value).regression
        assert compare_values("e", old, new, rule, alpha=above(c.p_value)).regression

    @pytest.mark.parametrize("n", [2, 3, 10])
    def test_no_change_passes_a_doubled_threshold_fails(self, n):
        old, same = cycles(n, 1.0, 0.002, 7 * n), cycles(n, 1.0, 0.002, 7 * n + 1)
        assert not compare_values("e", old, same, RISE).regression
        worse = [v * 1.12 for v in same]
        c = compare_values("e", old, worse, RISE)
        assert c.regression and c.p_value < DEFAULT_ALPHA and c.ci_low > 1.06
        # a large improvement on a rise rule, a large rise on a drop rule: never a regression
        assert not compare_values("e", old, [v * 0.8 for v in same], RISE).regression
        assert not compare_values("e", old, [v * 1.2 for v in same], DROP).regression
        assert compare_values("e", old, [v * 0.8 for v in same], DROP).regression

    def test_two_cycles_a_side_use_the_test(self):
        assert MIN_CYCLES_FOR_TEST == 2
        c = compare_values("e", [1.0, 1.001], [1.05, 1.051], RISE)
        assert c.p_value is not None and c.ci_low is not None
        c = compare_values("e", [1.0, 1.001], [1.05], RISE)
        assert c.p_value is None and c.ci_low is None and c.ci_high is None

    def test_zero_spread_decides_on_the_difference_alone(self):
        bound = 1 + MARGIN_FRACTION * RISE.threshold
        assert not compare_values("e", [1.0, 1.0], [1.0, 1.0], RISE).regression
        assert compare_values("e", [1.0, 1.0], [1.03, 1.03], RISE).regression
        at = compare_values("e", [1.0, 1.0], [bound] * 2, RISE)
        assert at.p_value == 1.0 and not at.regression
        assert compare_values("e", [1.0] * 2, [0.9] * 2, DROP).regression
        assert not compare_values("e", [1.0] * 2, [0.99] * 2, DROP).regression

    def test_non_positive_values_are_tested_relative_to_the_old_mean(self):
        old, new = [1.0, -0.5, 2.0, 1.5], [2.0, 1.0, 3.0, 2.5]
        r = welch_test(np.array(old), np.array(new), 0.06)
        assert r.scale == "relative"
        a, b = np.array(old) / np.mean(old), np.array(new) / np.mean(old)
        ref = stats.ttest_ind(b - 0.02, a, equal_var=False, alternative="greater")
        assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
        ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
        assert (r.ratio_low, r.ratio_high) == pytest.approx((1 + ci.low, 1 + ci.high), rel=1e-9)
        assert compare_values("e", old, new, RISE).scale == "relative"

    def test_a_wider_confidence_widens_the_interval(self):
        old, new = np.array(cycles(5, 1.0, 0.02, 1)), np.array(cycles(5, 1.05, 0.02, 2))
        narrow, wide = welch_test(old, new, 0.06), welch_test(old, new, 0.06, confidence=0.99)
        assert wide.ratio_low < narrow.ratio_low < narrow.ratio_high < wide.ratio_high
        assert welch_test(old, new, 0.06, margin_fraction=0.5).p_value > narrow.p_value

    def test_nothing_to_compare_gives_none(self):
        assert compare_values("e", [], [1.0], RISE) is None
        assert compare_values("e", [1.0], [], RISE) is None
        assert compare_values("e", [0.0, 0.0], [1.0, 1.0], RISE) is None
        assert compare_values("e", [math.nan], [1.0], RISE) is None
        c = compare_values("e", [1.0, math.nan, 1.0], [1.0, math.inf], RISE)
        assert (c.n_old, c.n_new) == (2, 1)


def test_compare_records_and_their_lines():
    old = {"experiments": {"a": {"metrics": {EPT_RAW: [1.0]}}, "gone": {"metrics": {EPT_RAW: [1.0]}}},
           "name": "base", "number": 3, "saved_at": "2026-01-02T03:04:05Z", "commit": {"id": "0123456789abcdef"},
           "machine_id": "m1"}
    new = {"experiments": {"a": {"metrics": {EPT_RAW: [1.1]}}, "b": {"metrics": {EPT_RAW: [1.0]}}},
           "name": "now", "machine_id": "m2"}
    found = compare_records(old, new, [RISE, DROP])
    # a metric neither run has is listed as not checked (never a silent pass), not judged
    assert [(c.experiment_id, c.rule, c.regression) for c in found] == [("a", RISE, True), ("a", DROP, False)]
    assert found[1].unavailable and not found[0].unavailable
    lines = format_comparisons(found, old, new)
    assert lines[0] == "compare: now vs saved 3 base (2026-01-02T03:04, commit 0123456789)"
    assert lines[1] == "WARNING: machine mismatch: saved on m1, now m2"
    assert lines[2].startswith("  a: energy_per_output_token 1.1 vs 1 (+10.0 %")
    other = {**old, "experiments": {"renamed": {"metrics": {EPT_RAW: [1.0]}}}}
    assert format_comparisons([], old, other)[1:] == ["no experiments in common (ids differ: changed configs get new ids)"]
    assert format_comparisons([], old, old)[1:] == []  # same ids: nothing to say about ids


@pytest.mark.parametrize(("spec", "threshold"), [("energy:5%", 0.05), ("tokens_per_s:-10%", -0.10), ("energy:+2.5%", 0.025)])
def test_parse_rules(spec, threshold):
    (rule,) = parse_rules(spec)
    assert rule.threshold == pytest.approx(threshold) and str(rule) == f"{rule.metric}:{threshold * 100:+g}%"


def test_parse_rules_lists_and_errors():
    assert [r.metric for r in parse_rules("energy:5%, tokens_per_s:-10%")] == ["energy", "tokens_per_s"]
    assert [r.metric for r in parse_rules(["energy:5% tokens_per_s:-1%", "energy_per_token:3%"])] == \
        ["energy", "tokens_per_s", "energy_per_token"]
    assert parse_rules(None) == [] and parse_rules("") == []
    with pytest.raises(ValueError, match="cannot read 'energy:5'"):
        parse_rules("energy:5")
    with pytest.raises(ValueError, match="a threshold of 0 %"):
        parse_rules("energy:0%")
    with pytest.raises(ValueError, match="unknown metric"):
        parse_rules("joules:5%")


class TestCompareDetails:
    """What a user reads and what the benchmarks call: messages, vectorised Welch, records."""

    def test_a_significant_result_reads_effect_ci_p_and_verdict(self):
        c = compare_values("e", [1.0, 1.02, 0.98], [1.0, 1.01, 0.99], RISE)
        low, high = ((c.ci_low - 1) * 100, (c.ci_high - 1) * 100)
        assert c.message() == (f"energy_per_output_token 1 vs 1 (+0.0 %, catches +6 %, margin +2 %; 95 % CI {low:+.1f} to "
                               f"{high:+.1f} %, p = {c.p_value:.2g} >= 0.01 (one-sided Welch t on log cycle values, "
                               "3 vs 3 saved cycles)): ok")
        assert c.p_value > 0.5 and low < -1 and high > 1
        wide = compare_values("e", [1.0, 1.3, 0.7], [1.0, 1.4, 0.6], RISE)
        assert f"95 % CI {(wide.ci_low - 1) * 100:+.1f} to {(wide.ci_high - 1) * 100:+.1f} %," in wide.message()
        assert wide.ci_low < 0.5 and wide.ci_high > 1.5  # wide enough that x 101 would show in the digits
        at_alpha = compare_values("e", [1.0, 1.02, 0.98], [1.05, 1.06, 1.07], RISE, alpha=0.5)
        at_alpha = compare_values("e", [1.0, 1.02, 0.98], [1.05, 1.06, 1.07], RISE, alpha=at_alpha.p_value)
        assert " >= " in at_alpha.message() and at_alpha.message().endswith("): ok")

    def test_the_margin_is_printed_to_two_digits(self):
        (rule,) = parse_rules("energy:2.97%")
        assert "catches +2.97 %, margin +0.99 %" in compare_values("e", [1.0], [1.0], rule).message()

    def test_a_missing_interval_prints_as_nan(self):
        from pytest_llenergy.results.compare import Comparison

        c = Comparison("e", RISE, 1.0, 1.0, 1.0, None, None, 3, 3, False, 0.5)
        assert "95 % CI +nan to +nan %, p = 0.5 >= 0.01" in c.message()

    def test_welch_p_works_row_by_row(self):
        from pytest_llenergy.results.compare import welch_p

        rng = np.random.default_rng(5)
        a, b = rng.normal(0, 0.02, (4, 6)), rng.normal(0.03, 0.05, (4, 8))
        rows = [welch_p(a[i], b[i], 0.02, True) for i in range(4)]
        for got, want in zip(welch_p(a, b, 0.02, True), zip(*rows)):
            assert got.shape == (4,) and np.allclose(got, want, rtol=1e-12)

    def test_zero_spread_exactly_at_the_margin_passes_both_ways_and_quietly(self):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no divide-by-zero or invalid-value warnings from a constant series
            for rule in (RISE, DROP):
                bound = 1 + MARGIN_FRACTION * rule.threshold
                at = compare_values("e", [1.0, 1.0], [bound, bound], rule)
                assert at.p_value == 1.0 and not at.regression and at.ci_low == at.ci_high == pytest.approx(bound)
                beyond = compare_values("e", [1.0, 1.0], [1 + 2 * rule.threshold] * 2, rule)
                assert beyond.p_value == 0.0 and beyond.regression

    def test_zero_or_negative_values_switch_to_the_relative_scale(self):
        for old, new in (([0.0, 2.0, 1.0], [2.0, 3.0, 2.5]), ([2.0, 3.0, 1.0], [0.0, 2.0, 2.5])):
            r = welch_test(np.array(old), np.array(new), 0.06)
            assert r.scale == "relative" and math.isfinite(r.p_value) and math.isfinite(r.ratio_low)

    def test_the_relative_scale_divides_by_the_old_mean(self):
        old, new = np.array([2.0, -1.0, 4.0, 3.0]), np.array([4.0, 2.0, 6.0, 5.0])
        r = welch_test(old, new, 0.06)
        ref = stats.ttest_ind(new / 2.0 - 0.02, old / 2.0, equal_var=False, alternative="greater")
        assert r.scale == "relative" and r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
        ci = stats.ttest_ind(new / 2.0, old / 2.0, equal_var=False).confidence_interval(0.95)
        assert (r.ratio_low, r.ratio_high) == pytest.approx((1 + ci.low, 1 + ci.high), rel=1e-9)

    def test_alpha_is_kept_on_every_path(self):
        assert compare_values("e", [1.0], [1.0], RISE, alpha=0.05).alpha == 0.05
        assert compare_values("e", [1.0, 1.1], [1.0, 1.1], RISE, alpha=0.05).alpha == 0.05

    def test_compare_records_skips_new_experiments_and_missing_metrics(self):
        old = {"experiments": {"b": {"metrics": {EPT_RAW: [1.0, 1.01]}}}}
        new = {"experiments": {"a-new": {"metrics": {EPT_RAW: [9.0]}}, "b": {"metrics": {EPT_RAW: [1.3, 1.31]}}}}
        found = compare_records(old, new, [DROP, RISE], alpha=0.2)
        assert [(c.experiment_id, str(c.rule), c.alpha) for c in found] == [("b", str(DROP), 0.2), ("b", str(RISE), 0.2)]
        assert found[0].unavailable and not found[0].regression  # the missing metric: named, not judged
        assert compare_records(new, old, [DROP, RISE]) != []
        no_old_metric = {"experiments": {"b": {"metrics": {"tokens_per_s": [1.0]}}}}
        # on one side only: a comparison that says which side lacks it ("metric unavailable" fails the test)
        assert [c.unavailable for c in compare_records(no_old_metric, new, [RISE])] == [
            "no energy_per_output_token_j values in the saved run"]
        assert [bool(c.unavailable) for c in compare_records(new, no_old_metric, [RISE])] == [True]

    def test_the_header_falls_back_to_the_run_id(self):
        lines = format_comparisons([], {"name": "base", "machine_id": "m"}, {"run_id": "r-1", "machine_id": "m"})
        assert lines[0] == "compare: r-1 vs saved  base (, not in a git checkout)"


def test_parse_rules_splits_commas_in_list_items():
    assert [str(r) for r in parse_rules(["energy:5%,tokens_per_s:-1%"])] == ["energy:+5%", "tokens_per_s:-1%"]
