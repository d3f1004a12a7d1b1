"""Deterministic, cost-balanced sharding of a campaign's experiments over N batch jobs.

Every cycle of an experiment stays on one shard (its confidence interval then comes from one node),
every shard computes the same split from the same campaign (no coordination needed), and the split
balances predicted cost: longest-processing-time-first over the experiments, sorted by cost and then
by id, each to the shard with the least cost so far (ties to the lower shard).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_llenergy.config.plan import Experiment

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)


class ShardSpecError(ValueError):
    """A shard spec that is not ``K/N`` with 1 <= K <= N."""


@dataclass(frozen=True)
class ShardSpec:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> ShardSpec:
        """``"2/8"`` -> ShardSpec(2, 8)."""
        try:
            k, n = (int(x) for x in str(text).split("/"))
        except ValueError:
            raise ShardSpecError(f"expected K/N such as 2/8, got {text!r}") from None
        if not 1 <= k <= n:
            raise ShardSpecError(f"need 1 <= K <= N, got {text!r}")
        return cls(k, n)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def model_scale(name: str) -> float:
    """Relative model size from its name (``llama-3.1-8b`` -> 8, ``smollm2-135m`` -> 0.135), else 1."""
    sizes = [float(v) * (1.0 if unit.lower() == "b" else 1e-3) for v, unit in _SIZE.findall(name)]
    return sizes[-1] if sizes else 1.0


def predicted_cost(experiment: Experiment, cycles: int) -> float:
    """Relative cost of all cycles of one experiment: tokens processed x model scale x cycles."""
    w = experiment.config.workload
    return cycles * w.num_prompts * (w.input_tokens + w.output_tokens) * model_scale(experiment.config.model.name if experiment.config.model else "")


def assign(experiments: Sequence[Experiment], count: int, cycles: int = 1) -> list[list[Experiment]]:
    """The experiments of each of ``count`` shards (each list in the campaign's order)."""
    order = {e.id: i for i, e in enumerate(experiments)}
    loads = [0.0] * count
    shards: list[list[Experiment]] = [[] for _ in range(count)]
    for exp in sorted(experiments, key=lambda e: (-predicted_cost(e, cycles), e.id)):
        target = min(range(count), key=lambda k: (loads[k], k))
        loads[target] += predicted_cost(exp, cycles)
        shards[target].append(exp)
    return [sorted(s, key=lambda e: order[e.id]) for s in shards]


def select(experiments: Sequence[Experiment], spec: ShardSpec, cycles: int = 1) -> list[Experiment]:
    """The experiments shard ``spec`` runs."""
    return assign(experiments, spec.count, cycles)[spec.index - 1]
