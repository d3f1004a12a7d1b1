"""The cheapest energy gate that catches a 3 % regression in adjusted J per output token.

Simulates gates under the H200's measured noise (``pytest_llenergy.results.noise``: duration and
power variance between cycles, baseline drift and run offset, 100 ms counter quantisation) for a
grid of recipes (path, cycles, window length in generate calls, order) with the gate's own test
(``results.compare.welch_p``: one-sided Welch t on log cycle values against half the threshold,
alpha 0.01). Prints power at +3 %, false alarms with no change, and GPU-seconds per gate, for
the cheapest recipe that reaches >= 95 % power with <= 1 % false alarms, the runners-up, and
today's defaults (1 cycle, 8 prompts at batch 4 = 2 calls, counter-only energy, convergence warmup every
cycle, and yesterday's test: the bootstrap CI of the ratio wholly beyond the threshold).

Orders: ``saved`` compares the new run with a saved run (the reference costs nothing per gate,
but two runs' baseline offsets differ); ``interleaved`` measures reference and candidate
alternately in the same job (twice the GPU time; the run offset cancels).

Usage: python benchmarks/bench_gate.py [--gates 4000] [--threshold 0.03] [--seed 1]
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass

import numpy as np

from pytest_llenergy.results.compare import DEFAULT_ALPHA, MARGIN_FRACTION, welch_p
from pytest_llenergy.results.noise import (
    GPU_BOUND,
    HOST_BOUND,
    HOST_BOUND_BS32,
    NEW,
    TODAY,
    WARMUP_NEW,
    WARMUP_TODAY,
    Measurement,
    WarmupPolicy,
    Workload,
    cycle_values,
    run_cost_s,
)

CYCLES = (3, 5, 8, 10, 12, 15, 20, 25, 30, 40, 60)
CALLS = (1, 2, 4, 8, 16)
ORDERS = ("saved", "interleaved")


def old_gate(old: np.ndarray, new: np.ndarray, threshold: float, rng: np.random.Generator) -> np.ndarray:
    """Yesterday's --lem-compare-fail: with >= 3 cycles a side, fail when the whole 95 % percentile
    bootstrap CI of mean(new)/mean(old) lies above 1 + threshold; else when the ratio of means does."""
    if old.shape[-1] < 3:
        return new.mean(-1) / old.mean(-1) > 1 + threshold
    b, n = 1000, old.shape[-1]
    idx_a, idx_b = rng.integers(0, n, (b, n)), rng.integers(0, n, (b, n))
    ratios = new[:, idx_b].mean(-1) / old[:, idx_a].mean(-1)  # (gates, b)
    return np.quantile(ratios, 0.025, axis=-1) > 1 + threshold


@dataclass(frozen=True)
class Recipe:
    workload: Workload
    measurement: Measurement
    warmup: WarmupPolicy
    cycles: int
    calls: int
    order: str
    old_test: bool = False  # yesterday's test (old_gate) instead of the Welch gate

    def gpu_seconds(self) -> float:
        one = run_cost_s(self.workload, self.warmup, self.calls, self.cycles)
        return 2 * one if self.order == "interleaved" else one


def gate_rates(recipe: Recipe, gates: int, threshold: float, rng: np.random.Generator,
               alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """(false-alarm rate with no change, power at a ``threshold`` regression) of ``gates`` simulated gates."""
    out = []
    for factor in (1.0, 1 + threshold):
        kw = dict(cycles=recipe.cycles, calls=recipe.calls)
        if recipe.order == "interleaved":  # same job: one run offset shared by both sides
            offsets = recipe.measurement.run_offset_w * rng.standard_normal(gates)
            old = cycle_values(rng, recipe.workload, recipe.measurement, runs=gates, offsets=offsets, **kw)
            new = cycle_values(rng, recipe.workload, recipe.measurement, runs=gates, offsets=offsets, factor=factor, **kw)
        else:
            old = cycle_values(rng, recipe.workload, recipe.measurement, runs=gates, **kw)
            new = cycle_values(rng, recipe.workload, recipe.measurement, runs=gates, factor=factor, **kw)
        if recipe.old_test:
            fail = old_gate(old, new, threshold, rng)
        elif recipe.cycles < 2:  # a point comparison of the means against the margin
            fail = new.mean(-1) / old.mean(-1) > 1 + MARGIN_FRACTION * threshold
        else:
            ok = (old > 0).all(-1) & (new > 0).all(-1)
            _, _, _, p = welch_p(np.log(np.where(ok[:, None], old, 1.0)), np.log(np.where(ok[:, None], new, 1.0)),
                                 math.log1p(MARGIN_FRACTION * threshold), True)
            fail = (p < alpha) & ok
        out.append(float(fail.mean()))
    return out[0], out[1]


def search(gates: int, threshold: float, seed: int) -> list[tuple[Recipe, float, float]]:
    rng = np.random.default_rng(seed)
    rows = []
    for workload, cycles, calls, order in itertools.product((HOST_BOUND, GPU_BOUND, HOST_BOUND_BS32), CYCLES, CALLS, ORDERS):
        recipe = Recipe(workload, NEW, WARMUP_NEW, cycles, calls, order)
        fa, power = gate_rates(recipe, gates, threshold, rng)
        rows.append((recipe, fa, power))
    return rows


def _line(label: str, recipe: Recipe, fa: float, power: float) -> str:
    return (f"{label:<22} {recipe.workload.name:<32} {recipe.cycles:>6} {recipe.calls:>6} {recipe.order:<12} "
            f"{power:>7.1%} {fa:>8.2%} {recipe.gpu_seconds():>9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gates", type=int, default=4000, help="simulated gates per recipe and case")
    parser.add_argument("--threshold", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = search(args.gates, args.threshold, args.seed)
    # Confirm the candidates with fresh draws, so the winner is not a lucky draw near the limits.
    confirm = np.random.default_rng(args.seed + 1)
    passing = []
    for recipe, fa, power in sorted(rows, key=lambda r: r[0].gpu_seconds()):
        if power >= 0.95 and fa <= 0.01:
            fa, power = gate_rates(recipe, 4 * args.gates, args.threshold, confirm)
            if power >= 0.95 and fa <= 0.01:
                passing.append((recipe, fa, power))
        if len(passing) >= 4:
            break
    today = Recipe(HOST_BOUND, TODAY, WARMUP_TODAY, 1, 2, "saved", old_test=True)  # cycles: 1, 8 prompts / bs 4
    today5 = Recipe(HOST_BOUND, TODAY, WARMUP_TODAY, 5, 2, "saved", old_test=True)
    print(f"gate for a {args.threshold:+.0%} regression in adjusted J/output token: one-sided Welch t on log cycle values "
          f"vs margin {MARGIN_FRACTION * args.threshold:+.1%}, alpha {DEFAULT_ALPHA}; {args.gates} simulated gates per case")
    print(f"{'':<22} {'path':<32} {'cycles':>6} {'calls':>6} {'order':<12} {'power':>7} {'false al':>8} {'GPU-s/gate':>9}")
    for k, (recipe, fa, power) in enumerate(passing):
        print(_line("recipe (cheapest)" if k == 0 else "runner-up", recipe, fa, power))
    if not passing:
        print("no recipe in the grid reaches the targets")
    rng = np.random.default_rng(args.seed + 2)
    for label, recipe in (("today's defaults", today), ("today, 5 cycles", today5)):
        print(_line(label, recipe, *gate_rates(recipe, args.gates, args.threshold, rng)))
    no_compile = [(recipe, *gate_rates(recipe, 4 * args.gates, args.threshold, confirm))
                  for recipe, fa, power in sorted(rows, key=lambda r: r[0].gpu_seconds())
                  if recipe.workload is HOST_BOUND_BS32 and power >= 0.95 and fa <= 0.01][:3]
    cheapest = next(((r, fa, p) for r, fa, p in no_compile if p >= 0.95 and fa <= 0.01), None)
    print(_line("cheapest, no compile", *cheapest) if cheapest else "no host-bound bs 32 recipe in the grid reaches the targets")
    best_host = min((r for r in rows if r[0].workload is HOST_BOUND), key=lambda r: (-(r[2] >= 0.95 and r[1] <= 0.01),
                                                                                     -r[2] + 10 * max(0, r[1] - 0.01)))
    print(_line("best host-bound, bs 4", *best_host))
    print("GPU-s/gate: the candidate run only for 'saved' (the reference was saved earlier), both for 'interleaved';"
          " model load excluded; warmup once per experiment + 1 re-warm call per cycle (today: 13 calls per cycle).")


if __name__ == "__main__":
    main()
