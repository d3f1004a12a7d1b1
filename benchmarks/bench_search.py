"""Racing search vs exhaustive cycling, simulated with the H200-calibrated noise model.

Grids of 8, 24 and 64 configurations of llama-3.2-1b on an H200 (batch size x attention x KV cache /
torch.compile x precision) with effect sizes on adjusted J per output token taken from the H200
measurements (docs/validation/h200-impact.md, h200-precision.md): batch 32 vs 8 -62 %, eager vs sdpa
+83 %, static cache + compile vs dynamic +26 % at batch 32 and -1.5 % at batch 8, fp16 vs bf16 +7.1 %.
Each configuration's cycle values come from ``pytest_llenergy.results.noise`` (host-bound HF generate
for the dynamic cache: batch 32 CV ~2.3 %, batch <= 4 CV 8-14 %; GPU-bound for static cache + compile),
scaled to its true mean; an item costs its warmup call, its window and a 3 s gap in GPU-seconds.

Race: ``pytest_llenergy.results.search.race`` exactly as the plugin runs it. Exhaustive: every
configuration cycles until its own CI half-width meets the same precision (adaptive cycles, same
min and max), then the lowest mean is the pick. Prints, per grid: P(pick within 2 % of the true
optimum), GPU-seconds, rounds, and the race's share of the exhaustive GPU time.

Usage: python benchmarks/bench_search.py [--sims 1000] [--seed 1] [--min-rounds 2] [--precision 0.02] [--fp16-effect 1.03]
       [--outliers 0.1:1.3]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from pytest_llenergy.results.noise import (
    GPU_BOUND,
    HOST_BOUND,
    HOST_BOUND_BS32,
    NEW,
    Workload,
    cycle_values,
)
from pytest_llenergy.results.search import Observation, RaceRules, half_width_rel, race
from pytest_llenergy.results.search_report import _interval, saving_interval

BATCH_EFFECT = {1: 20.0, 2: 10.5, 4: 5.3, 8: 2.63, 16: 1.5, 32: 1.0, 48: 0.9, 64: 0.85}
CALLS = 4  # generate calls per measured window
FP16 = {"effect": 1.071}  # fp16 vs bf16 (measured); --fp16-effect makes the race harder
GAP_S = 3.0


@dataclass(frozen=True)
class Config:
    name: str
    mean: float  # true adjusted J per output token, relative to bs32 sdpa dynamic bf16
    workload: Workload
    item_s: float  # GPU-seconds per item


def config(bs: int, attn: str, path: str, precision: str) -> Config:
    compiled = path == "static+compile"
    effect = BATCH_EFFECT[bs]
    if compiled:
        effect *= 0.985 if bs <= 8 else 1.26 if bs >= 32 else 1.12
    effect *= (1.25 if compiled else 1.83) if attn == "eager" else 1.0
    effect *= FP16["effect"] if precision == "fp16" else 1.0
    workload = GPU_BOUND if compiled else HOST_BOUND if bs <= 4 else HOST_BOUND_BS32
    duration = workload.call_s * (effect / BATCH_EFFECT[bs] if compiled else 1.0) * max(1.0, 32 / bs) ** 0.5
    return Config(f"bs{bs}-{attn}-{path}-{precision}", effect, workload, duration * (CALLS + 1) + GAP_S)


def grid(size: int) -> list[Config]:
    batches = {8: (16, 32), 24: (8, 16, 32), 64: tuple(BATCH_EFFECT)}[size]
    precisions = ("bf16",) if size == 8 else ("bf16", "fp16")
    return [config(*p) for p in itertools.product(batches, ("sdpa", "eager"), ("dynamic", "static+compile"), precisions)]


OUTLIERS = {"rate": 0.0, "size": 1.0}  # --outliers RATE:SIZE: a cycle is SIZE x its value with probability RATE


def draws(rng: np.random.Generator, configs: list[Config], rounds: int) -> np.ndarray:
    """(configs, rounds) cycle values: the noise model's relative noise around each true mean (and outliers)."""
    out = np.empty((len(configs), rounds))
    noise = MEASUREMENT["noise"]
    offset = noise.run_offset_w * rng.standard_normal(1)  # one run: the offset is shared
    for i, c in enumerate(configs):
        values = cycle_values(rng, c.workload, noise, runs=1, cycles=rounds, calls=CALLS, offsets=offset)[0]
        out[i] = values / c.workload.adjusted_j_per_token * c.mean
    if OUTLIERS["rate"] > 0:
        out *= np.where(rng.random(out.shape) < OUTLIERS["rate"], OUTLIERS["size"], 1.0)
    return out


MEASUREMENT = {"noise": NEW}  # --run-offset-w replaces its offset shared by a run's cycles


def reference(configs: list[Config]) -> str:
    """The configuration the saving is stated against: the smallest batch, sdpa, dynamic cache, bf16 (the defaults)."""
    return next(c.name for c in sorted(configs, key=lambda c: int(c.name[2:].split("-")[0]))
                if c.name.endswith("-sdpa-dynamic-bf16"))


def true_log_means(configs: list[Config], draws_per_config: int = 20000, seed: int = 99) -> dict[str, float]:
    """Each configuration's population mean of log cycle values (independent runs): the truth a saving estimates."""
    rng = np.random.default_rng(seed)
    out = {}
    for c in configs:
        values = cycle_values(rng, c.workload, MEASUREMENT["noise"], runs=draws_per_config, cycles=1, calls=CALLS)[:, 0]
        out[c.name] = float(np.log(values / c.workload.adjusted_j_per_token * c.mean).mean())
    return out


def race_once(configs: list[Config], values: np.ndarray,
              rules: RaceRules) -> tuple[str | None, float, int, set[str], dict | None, dict | None]:
    """(pick, GPU-seconds, rounds the pick ran, the configurations dropped as worse, the pick's saving against the
    reference and its own interval, as the answer states them)."""
    names = [c.name for c in configs]
    obs = [Observation(c.name, r + 1, True, float(values[i, r]), gpu_s=c.item_s)
           for i, c in enumerate(configs) for r in range(values.shape[1])]
    state = race(rules, names, [], until_round=1)
    # replay round by round: only the items the race lets run (survivors, the reference's first rounds) are fed
    ran: list[Observation] = []
    for r in range(1, rules.max_rounds + 1):
        ran += [o for o in obs if o.round == r and state.skip_reason(o.config) is None]
        state = race(rules, names, ran)
        if state.stopped is not None:
            break
    pick = state.incumbent or (min(state.alive, key=lambda c: np.mean(
        [o.objective for o in ran if o.config == c])) if state.alive else None)
    n_pick = sum(1 for o in ran if o.config == pick)
    worse = {c for c, d in state.dropped.items() if d.kind == "worse"}
    ref = rules.reference
    measured = {c: [o.objective for o in ran if o.config == c] for c in (pick, ref)}
    alpha = state.interval_alpha(rules)  # as the answer states them (search_report.py)
    saving = saving_interval(measured[pick], measured[ref], alpha) if pick not in (None, ref) else None
    pick_ci = _interval(measured[pick], alpha) if pick is not None else None
    return pick, sum(o.gpu_s for o in ran), n_pick, worse, saving, pick_ci


def exhaustive_once(configs: list[Config], values: np.ndarray, rules: RaceRules) -> tuple[str, float]:
    """Every configuration cycles until its own CI half-width <= precision (min..max rounds); lowest mean wins. The
    interval is stopping-adjusted as the race's (``RaceRules.interval_alpha``), so both state the same coverage."""
    means, cost = [], 0.0
    for i, c in enumerate(configs):
        n = rules.min_rounds
        while n < rules.max_rounds and half_width_rel(np.log(values[i, :n]), rules.interval_alpha) > rules.precision:
            n += 1
        means.append(values[i, :n].mean())
        cost += n * c.item_s
    return configs[int(np.argmin(means))].name, cost


def simulate(size: int, sims: int, rules: RaceRules, seed: int) -> dict[str, float]:
    configs = grid(size)
    best = min(c.mean for c in configs)
    good = {c.name for c in configs if c.mean <= best * 1.02}
    optimum = {c.name for c in configs if c.mean == best}
    rng = np.random.default_rng(seed)
    rules = dataclasses.replace(rules, reference=reference(configs))
    hits = ex_hits = fixed_hits = best_dropped = covered = stated = pick_covered = 0
    truth = true_log_means(configs)
    bias = 0.0
    cost = ex_cost = n_pick = fixed_cost = 0.0
    per_round = sum(c.item_s for c in configs)
    for _ in range(sims):
        values = draws(rng, configs, rules.max_rounds)
        pick, spent, n, worse, saving, pick_ci = race_once(configs, values, rules)
        best_dropped += bool(worse & optimum)
        if pick_ci is not None and pick_ci["ci_low"] is not None:
            pick_covered += pick_ci["ci_low"] <= math.exp(truth[pick]) <= pick_ci["ci_high"]
        if saving is not None and pick is not None:  # the answer's saving against the reference, and its CI
            true_saving = -math.expm1(truth[pick] - truth[rules.reference])
            stated += 1
            covered += saving["ci_low"] <= true_saving <= saving["ci_high"]
            bias += saving["saving"] - true_saving
        ex_pick, ex_spent = exhaustive_once(configs, values, rules)
        hits += pick in good
        ex_hits += ex_pick in good
        fixed_hits += configs[int(np.argmin(values[:, :n].mean(1)))].name in good
        fixed_cost += n * per_round
        cost, ex_cost, n_pick = cost + spent, ex_cost + ex_spent, n_pick + n
    return {"configs": size, "p_race": hits / sims, "p_exhaustive": ex_hits / sims, "race_s": cost / sims,
            "exhaustive_s": ex_cost / sims, "share": cost / ex_cost, "n_pick": n_pick / sims,
            "fixed_s": fixed_cost / sims, "fixed_share": cost / fixed_cost, "p_fixed": fixed_hits / sims,
            "near_optimal": len(good), "p_best_dropped": best_dropped / sims,
            "saving_cover": covered / stated if stated else math.nan, "saving_bias": bias / stated if stated else math.nan,
            "pick_cover": pick_covered / sims}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=1000, help="simulated searches per grid")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-rounds", type=int, default=2)
    parser.add_argument("--max-rounds", type=int, default=20)
    parser.add_argument("--precision", type=float, default=0.02)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--grids", default="8,24,64")
    parser.add_argument("--fp16-effect", type=float, default=1.071, help="fp16 / bf16 energy (1.071 measured on the H200)")
    parser.add_argument("--run-offset-w", type=float, default=NEW.run_offset_w,
                        help="sd of the baseline offset shared by a run's cycles (W; the H200's: 1.1)")
    parser.add_argument("--outliers", default="0:1", help="RATE:SIZE: each cycle value is SIZE x with probability RATE "
                        "(0.1:1.06: a tenth of cycles 6 %% high, as the H200's slow first cycles)")
    args = parser.parse_args()
    FP16["effect"] = args.fp16_effect
    OUTLIERS["rate"], OUTLIERS["size"] = (float(v) for v in args.outliers.split(":"))
    MEASUREMENT["noise"] = dataclasses.replace(NEW, run_offset_w=args.run_offset_w)
    rules = RaceRules(args.max_rounds, args.min_rounds, 1 - args.confidence, args.precision)
    print(f"fp16 / bf16 energy: {args.fp16_effect:g}; outliers: {OUTLIERS['rate']:.0%} of cycles x {OUTLIERS['size']:g}")
    print(f"racing vs exhaustive cycling to ±{args.precision:.0%} CI half-width; confidence {args.confidence:.0%} "
          f"(per round), min {args.min_rounds} / max {args.max_rounds} rounds, {args.sims} simulated searches per grid")
    print(f"{'configs':>7} {'within 2%':>9} {'P(race ok)':>10} {'race GPU-s':>10} {'pick rounds':>11} | "
          f"{'fixed GPU-s':>11} {'P(ok)':>6} {'race/fixed':>10} | {'adapt. GPU-s':>12} {'P(ok)':>6} {'race/adapt.':>11} "
          f"{'best dropped':>12} {'saving cov.':>11} {'bias':>6} {'pick cov.':>9} {'sim s':>6}")
    for size in (int(s) for s in args.grids.split(",")):
        started = time.perf_counter()
        row = simulate(size, args.sims, rules, args.seed + size)
        print(f"{size:>7} {row['near_optimal']:>9} {row['p_race']:>10.1%} {row['race_s']:>10.0f} {row['n_pick']:>11.1f} | "
              f"{row['fixed_s']:>11.0f} {row['p_fixed']:>6.1%} {row['fixed_share']:>10.2f} | "
              f"{row['exhaustive_s']:>12.0f} {row['p_exhaustive']:>6.1%} {row['share']:>11.2f} {row['p_best_dropped']:>12.1%} "
              f"{row['saving_cover']:>11.1%} {row['saving_bias']:>+6.1%} {row['pick_cover']:>9.1%} {time.perf_counter() - started:>6.0f}")
    print("within 2%: configurations whose true mean is within 2 % of the optimum (any of them counts as a correct pick); "
          "best dropped: searches in which the true optimum was dropped as worse (in any round); saving cov.: how often "
          f"the answer's {args.confidence:.0%} CI of the pick's saving against the defaults (smallest batch, sdpa, dynamic, bf16) holds the true saving (ratio "
          "of population geometric means); bias: its mean error, in points of saving; pick cov.: how often the pick's own "
          "interval holds its population mean (only meaningful with --run-offset-w 0: a run's baseline offset is common to "
          "all its cycles, so no interval over cycles holds it; the measurement's uncertainty states it apart).")


if __name__ == "__main__":
    main()
