"""Simulate the coverage of the summary's intervals and write pytest_llenergy/results/coverage_table.json.

For n = 2..MAX_N cycles, normal(100, 5) and lognormal(0, 0.5) cycle values, CAMPAIGNS simulated
campaigns per cell: how often Student's t interval and the small-sample expanded BCa bootstrap
(``summarize``'s engine) contain the true mean at 95 %. Prints the markdown table of docs/statistics.md.

Usage: python scripts/gen_coverage_table.py [--campaigns 10000] [--resamples 4000] [--check]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from pytest_llenergy.results.bootstrap import METHOD_BCA, bca_mean_intervals
from pytest_llenergy.results.coverage import (
    METHOD_T,
    SKEWED,
    T_BELOW,
    TABLE_CONFIDENCE,
    TABLE_PATH,
    t_bounds,
)

MAX_N = 30
DISTRIBUTIONS = {
    "normal": (lambda rng, size: rng.normal(100.0, 5.0, size), 100.0),
    "skewed": (lambda rng, size: rng.lognormal(0.0, 0.5, size), float(np.exp(0.125))),
}


def simulate(method: str, kind: str, n: int, campaigns: int, resamples: int, seed: int = 2026) -> float:
    """Fraction of ``campaigns`` whose interval contains the true mean."""
    draw, truth = DISTRIBUTIONS[kind]
    x = draw(np.random.default_rng([seed, n, kind == "skewed"]), (campaigns, n))
    if method == METHOD_T:
        low, high = t_bounds(x.mean(1), x.std(1, ddof=1), np.full(campaigns, n), TABLE_CONFIDENCE)
    else:
        r = bca_mean_intervals(x, confidence=TABLE_CONFIDENCE, n_resamples=resamples, rng=np.random.default_rng(n))
        low, high = r.low, r.high
    return float(np.mean((low <= truth) & (truth <= high)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=4000)
    args = parser.parse_args()
    table: dict[str, dict[str, list[float]]] = {METHOD_T: {}, METHOD_BCA: {}}
    print("| n | t, normal | t, skewed | BCa (expanded), normal | BCa (expanded), skewed | used |")
    print("|---|---|---|---|---|---|")
    for n in range(2, MAX_N + 1):
        for method in table:
            table[method][str(n)] = [round(simulate(method, k, n, args.campaigns, args.resamples), 4)
                                     for k in DISTRIBUTIONS]
        t, b = table[METHOD_T][str(n)], table[METHOD_BCA][str(n)]
        used = METHOD_T if n < T_BELOW else METHOD_BCA
        print(f"| {n} | {t[0]:.3f} | {t[1]:.3f} | {b[0]:.3f} | {b[1]:.3f} | {used} |", flush=True)
    payload = {"confidence": TABLE_CONFIDENCE, "campaigns": args.campaigns, "resamples": args.resamples,
               "max_n": MAX_N, "distributions": {"normal": "normal(100, 5)", "skewed": SKEWED},
               "columns": list(DISTRIBUTIONS), "coverage": table}
    TABLE_PATH.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {TABLE_PATH}")


if __name__ == "__main__":
    main()
