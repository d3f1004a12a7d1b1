"""Quantities users write as strings, and budgets built from them (fast, no pytest run inside)."""

from __future__ import annotations

import pytest

from pytest_llenergy.config.budgets import BUDGET_METRICS, Budget, format_quantity
from pytest_llenergy.config.units import parse_duration, parse_quantity


@pytest.mark.parametrize("text, seconds", [
    (10, 10.0), (2.5, 2.5), ("10", 10.0), ("10s", 10.0), ("3 sec", 3.0), ("250ms", 0.25), ("2min", 120.0),
    ("2 m", 120.0), ("1h", 3600.0), (" 1.5e1 S ", 15.0), (".5s", 0.5), ("+4s", 4.0), ("0", 0.0), ("1.", 1.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text, message", [
    (True, "a duration cannot be true/false"), ("10 parsecs", "unknown time unit 'parsecs' in '10 parsecs' (use s, ms, min or h)"),
    ("-1s", "a duration cannot be negative (got '-1s')"), (-0.5, "a duration cannot be negative (got -0.5)"),
    ("ten", "cannot read 'ten' as a number with a unit"), ("1 2 s", "cannot read '1 2 s' as a number with a unit"),
])
def test_bad_durations(text, message):
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize("text, kind, value", [
    (0.45, "energy", 0.45), (3, "power", 3.0), ("0.45", "energy", 0.45), ("1.5 kJ", "energy", 1500.0),
    ("2 Wh", "energy", 7200.0), ("1 kWh", "energy", 3.6e6), ("5 mJ", "energy", 5e-3), ("2 MJ", "energy", 2e6),
    ("7 J", "energy", 7.0), ("300 W", "power", 300.0), ("2 kW", "power", 2000.0), ("5 mW", "power", 5e-3),
    ("3 MW", "power", 3e6),
])
def test_quantities(text, kind, value):
    assert parse_quantity(text, kind) == pytest.approx(value, rel=1e-12)


def test_bad_quantities():
    with pytest.raises(ValueError, match="^an energy cannot be true/false$"):
        parse_quantity(False, "energy")
    with pytest.raises(ValueError) as info:
        parse_quantity("3 W", "energy")
    assert str(info.value) == "unknown energy unit 'W' in '3 W' (use j, kj, mj, wh, kwh)"
    with pytest.raises(ValueError) as info:
        parse_quantity("3 J", "power")
    assert str(info.value) == "unknown power unit 'J' in '3 J' (use w, kw, mw)"


def test_budget_from_keywords():
    budget = Budget.from_kwargs({"energy": "2 kJ", "mean_power": 300, "tolerance": "10%", "adjusted": False}, source="yaml")
    assert budget == Budget({"energy": 2000.0, "mean_power": 300.0}, 0.1, False, "yaml")
    assert Budget.from_kwargs({"energy_per_token": 1, "tolerance": 0.25}).tolerance == 0.25
    assert Budget.from_kwargs({"energy_per_token": 1, "tolerance": " 0.5 "}).tolerance == 0.5
    default = Budget.from_kwargs({"energy_per_output_token": "0.5 J"})
    assert (default.tolerance, default.adjusted, default.source) == (0.0, True, "marker")


@pytest.mark.parametrize("kwargs, message", [
    ({"joules": 1, "watts": 2}, "unknown budget keyword(s) joules, watts (known: energy_per_output_token, "
                                "energy_per_token, energy, mean_power, tolerance, adjusted)"),
    ({}, "a budget needs at least one limit"),
    ({"tolerance": 0.1}, "a budget needs at least one limit"),
    ({"energy": 0}, "energy: a budget must be positive, got 0"),
    ({"energy": "-1 J"}, "energy: a budget must be positive, got '-1 J'"),
    ({"energy": 1, "adjusted": "yes"}, "adjusted must be true or false, got 'yes'"),
    ({"energy": 1, "tolerance": True}, "tolerance must be a fraction or a percentage, got True"),
    ({"energy": 1, "tolerance": [1]}, "tolerance must be a fraction or a percentage, got [1]"),
    ({"energy": 1, "tolerance": -0.1}, "tolerance must be between 0 and 10 (fraction), got -0.1"),
    ({"energy": 1, "tolerance": 10}, "tolerance must be between 0 and 10 (fraction), got 10"),
])
def test_bad_budgets(kwargs, message):
    with pytest.raises(ValueError) as info:
        Budget.from_kwargs(kwargs)
    assert str(info.value) == message


def test_budget_tolerance_bounds_are_inclusive_below():
    assert Budget.from_kwargs({"energy": 1, "tolerance": 0}).tolerance == 0.0
    assert Budget.from_kwargs({"energy": 1, "tolerance": 9.99}).tolerance == 9.99


def test_budget_columns_prefer_the_adjusted_figure_when_one_exists():
    adjusted, raw = Budget({"energy": 1.0}), Budget({"energy": 1.0}, adjusted=False)
    assert adjusted.column("energy_per_output_token") == ("adjusted_energy_per_output_token_j", True)
    assert raw.column("energy_per_output_token") == ("energy_per_output_token_j", False)
    assert adjusted.column("mean_power") == ("mean_power_w", False)  # no adjusted power
    assert adjusted.columns("energy") == [("energy_adjusted_j", True), ("energy_j", False)]
    assert raw.columns("energy") == [("energy_j", False)]
    assert adjusted.columns("mean_power") == [("mean_power_w", False)]
    assert set(BUDGET_METRICS) == {"energy_per_output_token", "energy_per_token", "energy", "mean_power"}


@pytest.mark.parametrize("value, kind, text", [
    (2.5e6, "energy", "2.5 MJ"), (1e6, "energy", "1 MJ"), (1500.0, "energy", "1.5 kJ"), (1000.0, "power", "1 kW"),
    (0.45, "energy", "0.45 J"), (0.001, "power", "0.001 W"), (0.0009, "power", "0.9 mW"), (999.0, "power", "999 W"), (1.0, "energy", "1 J"),
    (0.0005, "energy", "0.5 mJ"), (0.0, "energy", "0 mJ"), (-1500.0, "energy", "-1.5 kJ"),
])
def test_format_quantity(value, kind, text):
    assert format_quantity(value, kind) == text
