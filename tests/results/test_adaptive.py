"""Adaptive cycles: stop once the relative CI half-width meets the target."""

from __future__ import annotations

import math

import pytest

from pytest_llenergy.results import decide, metric_column
from pytest_llenergy.results.metrics import METRIC_ALIASES


def test_done_when_narrow_enough_after_min_cycles():
    d = decide([1.0, 1.01, 0.99, 1.0], min_cycles=3, target_rel_halfwidth=0.02, seed=1)
    assert d.done and d.n == 4 and d.halfwidth_rel <= 0.02
    assert d.reason.startswith("CI half-width ") and "≤ target 2.0 % after 4 cycles" in d.reason


def test_not_done_when_wide():
    d = decide([1.0, 1.2, 0.8], min_cycles=3, target_rel_halfwidth=0.02, seed=1)
    assert not d.done and d.halfwidth_rel > 0.02 and "> target 2.0 %" in d.reason


def test_waits_for_min_cycles_even_when_narrow():
    d = decide([1.0, 1.0], min_cycles=3, target_rel_halfwidth=0.02, seed=1)
    assert not d.done and d.halfwidth_rel is None and "2 usable value(s) < 3 needed" in d.reason


def test_missing_values_do_not_count_but_cycles_do():
    d = decide([1.0, None, math.nan, 1.0, 1.0], min_cycles=3, target_rel_halfwidth=0.02, seed=1)
    assert d.done and d.n == 3 and "2 missing ignored" in d.reason
    d = decide([1.0, None, None], min_cycles=3, target_rel_halfwidth=0.02, seed=1, max_cycles=3)
    assert d.done and "max 3 cycles reached" in d.reason


def test_zero_mean_never_meets_a_relative_target():
    d = decide([-1.0, 1.0, 0.0], min_cycles=3, target_rel_halfwidth=0.02, seed=1)
    assert not d.done and "mean is 0" in d.reason


def test_stops_at_max_cycles():
    d = decide([1.0, 1.3, 0.7, 1.1], min_cycles=3, target_rel_halfwidth=0.02, seed=1, max_cycles=4)
    assert d.done and d.reason.startswith("max 4 cycles reached; CI half-width")


def test_bad_settings_are_errors():
    with pytest.raises(ValueError, match="min_cycles"):
        decide([1.0], min_cycles=0, target_rel_halfwidth=0.02)
    with pytest.raises(ValueError, match="target_rel_halfwidth"):
        decide([1.0], min_cycles=3, target_rel_halfwidth=0)
    with pytest.raises(ValueError, match="max_cycles"):
        decide([1.0], min_cycles=3, target_rel_halfwidth=0.1, max_cycles=2)


def test_metric_names_map_to_columns():
    assert metric_column("energy_per_output_token") == "energy_per_output_token_j"
    assert metric_column("adjusted_energy_per_output_token") == "adjusted_energy_per_output_token_j"
    assert metric_column("energy") == "energy_j" and metric_column("adjusted_energy") == "energy_adjusted_j"
    assert metric_column("mean_power") == "mean_power_w" and metric_column("tokens_per_s") == "tokens_per_s"
    assert metric_column("energy_per_token_j") == "energy_per_token_j"  # a column name is accepted as is
    with pytest.raises(ValueError, match="unknown metric 'energy_per_tok'; known metrics: .*energy_per_token"):
        metric_column("energy_per_tok")
    assert all(column for column in METRIC_ALIASES.values())
