"""Order campaign items by cycle structure: interleaved, shuffled (seeded per cycle) or grouped.

Pure functions of (experiment index, cycle) pairs, so every xdist worker computes the same order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def campaign_order(keys: Sequence[tuple[int, int]], order: str, seed: int) -> list[int]:
    """Positions of ``keys`` (experiment index, cycle) in run order."""
    if order == "grouped":
        return sorted(range(len(keys)), key=lambda i: (keys[i][0], keys[i][1]))
    by_cycle: dict[int, list[int]] = {}
    for position, (_, cycle) in enumerate(keys):
        by_cycle.setdefault(cycle, []).append(position)
    result: list[int] = []
    for cycle in sorted(by_cycle):
        positions = sorted(by_cycle[cycle], key=lambda i: keys[i][0])
        if order == "shuffled":
            random.Random(f"{seed}:{cycle}").shuffle(positions)
        result.extend(positions)
    return result


def place_in_slots(items: list, is_campaign: Sequence[bool], ordered_campaign: list) -> list:
    """Put reordered campaign items back into the campaign items' slots; others keep their place."""
    it = iter(ordered_campaign)
    return [next(it) if flag else item for item, flag in zip(items, is_campaign)]
