"""How often an adaptively stopped experiment's 95 % interval holds the true mean (adaptive cycles' coverage).

Adaptive cycles (``cycles: {min, max, target_ci_halfwidth}``) stop an experiment once its interval is
narrow enough (``pytest_llenergy.results.decide``, the rule the plugin runs). The data then chose n, and
it stops more often when the sample spread happens to be small, so the interval reported afterwards
is narrower than its n deserves. This simulates cycle values (normal, coefficient of variation CV
around a true mean of 1), runs ``decide`` cycle by cycle from ``min`` to ``max`` exactly as the plugin
does, and prints how often the reported interval (the summary's: Student t below 10 cycles, BCa from
10) holds the true mean, against the same interval at a fixed n (the coverage column of the summary
assumes a fixed n) and the stopping-adjusted variant the search uses (decide and report at the 97.5 %
t quantile).

Usage: python benchmarks/bench_adaptive_coverage.py [--sims 4000] [--min 3] [--max 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from pytest_llenergy.results import decide


def _t_interval(x: np.ndarray, confidence: float) -> tuple[float, float]:
    hw = float(stats.t.ppf(1 - (1 - confidence) / 2, x.size - 1)) * float(x.std(ddof=1)) / np.sqrt(x.size)
    return float(x.mean()) - hw, float(x.mean()) + hw


def _rel_halfwidth(x: np.ndarray, confidence: float) -> float:
    low, high = _t_interval(x, confidence)
    return (high - low) / 2 / abs(float(x.mean()))


def simulate(cv: float, target: float, sims: int, lo: int, hi: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    shipped = adjusted = fixed = stopped_early = 0
    cycles = adj_cycles = 0.0
    for _ in range(sims):
        x = 1.0 + cv * rng.standard_normal(hi)
        n = next((k for k in range(lo, hi + 1) if decide(list(x[:k]), lo, target, 0, max_cycles=hi).done), hi)
        low, high = _t_interval(x[:n], 0.95)  # the summary's interval below 10 cycles
        shipped += low <= 1.0 <= high
        stopped_early += n < hi
        cycles += n
        m = next((k for k in range(lo, hi + 1) if _rel_halfwidth(x[:k], 0.975) <= target), hi)
        low, high = _t_interval(x[:m], 0.975)
        adjusted += low <= 1.0 <= high
        adj_cycles += m
        low, high = _t_interval(rng.normal(1.0, cv, n), 0.95)  # a fresh sample of the same n, not chosen by its data
        fixed += low <= 1.0 <= high
    return {"shipped": shipped / sims, "cycles": cycles / sims, "early": stopped_early / sims, "fixed": fixed / sims,
            "adjusted": adjusted / sims, "adj_cycles": adj_cycles / sims}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=4000)
    parser.add_argument("--min", type=int, default=3)
    parser.add_argument("--max", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"adaptive cycles min {args.min}, max {args.max}; {args.sims} simulated experiments per row; normal cycle values")
    print(f"{'CV':>5} {'target':>6} | {'stopped early':>13} {'cycles':>6} {'coverage':>8} | {'fixed n':>7} | "
          f"{'adjusted: coverage':>18} {'cycles':>6} {'sim s':>6}")
    for cv, target in ((0.01, 0.02), (0.02, 0.02), (0.02, 0.03), (0.03, 0.02), (0.05, 0.03), (0.1, 0.05)):
        started = time.perf_counter()
        row = simulate(cv, target, args.sims, args.min, args.max, args.seed)
        print(f"{cv:>5.0%} {target:>6.0%} | {row['early']:>13.1%} {row['cycles']:>6.1f} {row['shipped']:>8.1%} | "
              f"{row['fixed']:>7.1%} | {row['adjusted']:>18.1%} {row['adj_cycles']:>6.1f} {time.perf_counter() - started:>6.0f}")
    print("coverage: how often the interval reported after the adaptive stop holds the true mean (nominal 95 %); "
          "fixed n: the same interval on a fresh sample of the same n; adjusted: decided and reported at the 97.5 % "
          "t quantile, as a search does.")


if __name__ == "__main__":
    main()
