"""Campaign order as pure functions: interleaved, shuffled (seeded per cycle), grouped; slot placement."""

from __future__ import annotations

import random

import pytest

from pytest_llenergy.config.ordering import campaign_order, place_in_slots

# (experiment index, cycle) in collection order: experiments 0..2 x cycles 1..3, deliberately scrambled
KEYS = [(2, 1), (0, 2), (1, 1), (0, 1), (2, 3), (1, 3), (0, 3), (1, 2), (2, 2)]


def keys_of(order: list[int]) -> list[tuple[int, int]]:
    return [KEYS[i] for i in order]


def test_grouped_runs_each_experiment_through_all_its_cycles():
    assert keys_of(campaign_order(KEYS, "grouped", 0)) == [
        (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]


def test_interleaved_runs_cycle_by_cycle_in_experiment_order():
    assert keys_of(campaign_order(KEYS, "interleaved", 0)) == [
        (0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2), (0, 3), (1, 3), (2, 3)]


def test_shuffled_keeps_cycles_together_and_shuffles_within_each_by_seed_and_cycle():
    order = keys_of(campaign_order(KEYS, "shuffled", 7))
    assert [cycle for _, cycle in order] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    for cycle in (1, 2, 3):  # exactly random.Random("seed:cycle") over the sorted experiments
        expected = [0, 1, 2]
        random.Random(f"7:{cycle}").shuffle(expected)
        assert [e for e, c in order if c == cycle] == expected
    assert campaign_order(KEYS, "shuffled", 7) == campaign_order(KEYS, "shuffled", 7)  # deterministic


def test_shuffled_differs_between_seeds_and_cycles():
    keys = [(e, c) for c in (1, 2, 3, 4) for e in range(8)]
    orders = {s: [keys[i] for i in campaign_order(keys, "shuffled", s)] for s in (1, 2)}
    assert orders[1] != orders[2]
    per_cycle = [[e for e, c in orders[1] if c == cycle] for cycle in (1, 2, 3, 4)]
    assert len({tuple(p) for p in per_cycle}) > 1  # each cycle its own shuffle
    assert all(sorted(p) == list(range(8)) for p in per_cycle)


def test_every_position_appears_once():
    for order in ("grouped", "interleaved", "shuffled"):
        assert sorted(campaign_order(KEYS, order, 3)) == list(range(len(KEYS)))
    assert campaign_order([], "interleaved", 0) == [] and campaign_order([], "grouped", 0) == []


@pytest.mark.parametrize("items, flags, expected", [
    (["a", "x", "b", "c", "y"], [True, False, True, True, False], ["C", "x", "A", "B", "y"]),
    (["x", "y"], [False, False], ["x", "y"]),
    (["a", "b"], [True, True], ["C", "A"]),
])
def test_place_in_slots_keeps_other_items_in_place(items, flags, expected):
    assert place_in_slots(items, flags, ["C", "A", "B"]) == expected
