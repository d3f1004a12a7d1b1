"""A compare rule on a metric a source cannot give never passes silently (issue 26, finding 3).

CPU sources (the estimate, RAPL) measure no idle baseline: ``adjusted_*`` figures do not exist.
Budgets judge the raw figure and say so; comparisons do the same, and a metric missing on one
side fails as "metric unavailable".
"""

from __future__ import annotations

from pytest_llenergy.results.compare import (
    RAW_BASIS,
    compare_records,
    format_comparisons,
    parse_rules,
)

RULE = parse_rules("adjusted_energy_per_output_token:3%")
OLD = [1.0, 1.01, 0.99, 1.0, 1.02]


def record(values, column="energy_per_output_token_j", commit=None):
    return {"name": "run", "experiments": {"e": {"metrics": {column: values}}},
            "commit": {"id": commit} if commit else None, "machine_id": "m"}


def test_adjusted_rule_on_a_cpu_source_judges_raw_and_catches_a_2x_regression():
    old, new = record(OLD), record([2 * v for v in OLD])
    [c] = compare_records(old, new, RULE)
    assert c.regression and c.basis == RAW_BASIS and c.ratio > 1.9
    lines = format_comparisons([c], old, new)
    assert "raw: no baseline-adjusted figure from this source" in lines[-1] and lines[-1].endswith("REGRESSION")
    assert not any("no experiments in common" in line for line in lines)


def test_no_regression_on_raw_passes_and_says_raw():
    [c] = compare_records(record(OLD), record(list(OLD)), RULE)
    assert not c.regression and "raw: no baseline-adjusted" in c.message()


def test_adjusted_figures_are_used_when_both_sides_have_them():
    old = {"experiments": {"e": {"metrics": {"adjusted_energy_per_output_token_j": OLD, "energy_per_output_token_j": OLD}}}}
    new = {"experiments": {"e": {"metrics": {"adjusted_energy_per_output_token_j": OLD,
                                             "energy_per_output_token_j": [2 * v for v in OLD]}}}}
    [c] = compare_records(old, new, RULE)
    assert c.basis is None and not c.regression


def test_metric_missing_on_one_side_fails_as_unavailable_and_on_both_is_said():
    old = record(OLD, column="adjusted_energy_per_output_token_j")  # saved on a GPU, compared on a CPU
    [c] = compare_records(old, record(OLD), RULE)
    assert c.regression and c.unavailable
    assert "metric unavailable (no adjusted_energy_per_output_token_j values in this run)" in c.message()
    [c] = compare_records(record(OLD), record(OLD), parse_rules("ttft_ms_mean:10%"))  # neither run has it
    assert not c.regression and c.message().endswith("metric unavailable (no ttft_ms_mean values in either run): "
                                                     "ttft_ms_mean:+10% not checked")


def test_header_says_when_the_saved_run_had_no_commit():
    lines = format_comparisons([], record(OLD), record(OLD))
    assert "not in a git checkout" in lines[0] and "None" not in lines[0]
    assert "commit abcdef0123" in format_comparisons([], record(OLD, commit="abcdef0123456"), record(OLD))[0]


def test_point_comparison_does_not_call_itself_not_significant_then_regression():
    [c] = compare_records(record([1.0]), record([2.0]), RULE)
    message = c.message()
    assert c.regression and "not significant" not in message
    assert message.endswith("REGRESSION (means only, untested)")
