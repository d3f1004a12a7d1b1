"""CI half-width reached per GPU-minute: today's defaults vs the new ones, under the H200's measured noise.

Simulated campaigns (``pytest_llenergy.results.noise``: duration CV between cycles 8-14 % for
host-bound HF generate and 1-2 % on the GPU-bound static-cache path, power variance, ~1 W baseline
drift, 100 ms counter quantisation) of one experiment given a GPU-time budget. Per budget: the
cycles that fit, the median 95 % CI half-width of adjusted J per output token, and how often that
interval actually holds the true mean.

- today: convergence warmup re-running the batch before every window (6-20 runs, mean 13),
  counter-only energy, the expanded BCa bootstrap at every n;
- new: warmup once per model and shape + one re-warm call per cycle, edge-corrected energy,
  Student's t below 10 cycles and BCa from 10 (results/coverage.py).

Part ``walltime`` (issue 28): the share of a campaign's wall time that is measured, before and now,
replayed from runs recorded on the H200 (``walltime_replay.py``): gpu_precision.yaml and the
host-bound campaign (host_bound.yaml), with each experiment's 95 % CI half-width and the first
baseline's own 95 % half-width relative to the windows' adjusted power.

CPU only. Usage: python benchmarks/bench_precision.py [--part ci|walltime|all] [--runs 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from walltime_replay import (
    FirstBatch,
    Replayed,
    cycles_for,
    first_batch_excess,
    replay_campaign,
    replay_first_baseline,
)

from pytest_llenergy.results.bootstrap import bca_mean_intervals
from pytest_llenergy.results.coverage import cycles_needed, t_bounds, use_t
from pytest_llenergy.results.noise import (
    GPU_BOUND,
    HOST_BOUND,
    NEW,
    TODAY,
    WARMUP_NEW,
    WARMUP_TODAY,
    Measurement,
    WarmupPolicy,
    Workload,
    cycle_cost_s,
    cycle_values,
    run_cost_s,
)

BUDGETS_MIN = (1, 2, 4, 8)
CALLS = 2  # 8 prompts: 2 calls at batch 4; the GPU-bound rows use 2 calls of batch 32
POLICIES = {"today": (TODAY, WARMUP_TODAY, False), "new": (NEW, WARMUP_NEW, True)}


def cycles_in(budget_s: float, workload: Workload, warmup: WarmupPolicy) -> int:
    """Cycles of one experiment that fit in ``budget_s`` GPU-seconds (0 when not even one)."""
    fixed = run_cost_s(workload, warmup, CALLS, 0)
    return max(0, int((budget_s - fixed) // cycle_cost_s(workload, warmup, CALLS)))


def intervals(x: np.ndarray, student: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[1]
    if student and use_t(n):
        return t_bounds(x.mean(1), x.std(1, ddof=1), np.full(len(x), n), 0.95)
    r = bca_mean_intervals(x, n_resamples=2000, rng=rng)
    return r.low, r.high


def simulate(workload: Workload, measurement: Measurement, warmup: WarmupPolicy, student: bool, budget_s: float,
             runs: int, rng: np.random.Generator) -> tuple[int, float, float, float]:
    """(cycles, median relative half-width, coverage, cycle-value CV) for one budget."""
    n = cycles_in(budget_s, workload, warmup)
    truth = workload.adjusted_j_per_token
    probe = cycle_values(rng, workload, measurement, runs=1, cycles=20_000, calls=CALLS, offsets=np.zeros(1))[0]
    cv = float(probe.std() / probe.mean())
    if n < 2:
        return n, float("nan"), float("nan"), cv
    x = cycle_values(rng, workload, measurement, runs=runs, cycles=n, calls=CALLS, offsets=np.zeros(runs))
    low, high = intervals(x, student, rng)
    half = (high - low) / 2 / np.abs(x.mean(1))
    return n, float(np.median(half)), float(np.mean((low <= truth) & (truth <= high))), cv


def minutes_for(target: float, cv: float, workload: Workload, warmup: WarmupPolicy) -> float:
    """GPU-minutes until the t half-width of the typical spread reaches ``target``."""
    n = cycles_needed(cv, target)
    return float("nan") if n is None else run_cost_s(workload, warmup, CALLS, n) / 60


DATA = Path(__file__).resolve().parent.parent / "docs" / "validation" / "data"
RECORDED = {  # campaign file -> its run recorded on the H200 (docs/validation/h200-precision.md)
    "gpu_precision.yaml": DATA / "precision-h200-gpubound/precision/results/gpu-precision/2026-11-30T18-47-25-191a",
    "host_bound.yaml": DATA / "precision-h200/run",
}
#: host_bound.yaml recorded with today's code (adaptive first baseline, tracked re-checks, the warmup's full-length batch)
TRACKED = next((DATA / "walltime-h200/host_bound-tracked/results").glob("*/*/walltime.json")).parent


def walltime() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        idle = replay_first_baseline(Path(tmp))
    print(f"first baseline on the recorded H200 idle ({idle.idle_w:.1f} W): before {idle.before_s:.0f} s, "
          f"95 % half-width {idle.before_hw_w:.3f} W | now (adaptive) {idle.now_s:.0f} s, {idle.now_hw_w:.3f} W")
    names = ("measured", "warmup", "baseline", "gaps", "model load", "other")
    print(f"{'campaign':<20} {'items':>5} {'wall s before | now':>19} " + " ".join(f"{n + ' %':>15}" for n in names))
    runs = [replay_campaign(name, path, idle) for name, path in RECORDED.items()]
    for r in runs:
        cells = " ".join(f"{r.pieces['before'][n]:>6.1f} | {r.pieces['now'][n]:<6.1f}" for n in names)
        print(f"{r.name:<20} {r.items:>5} {r.wall['before']:>8.1f} | {r.wall['now']:<8.1f} {cells}")
    for r in runs:
        steady = 100 * r.measured_s / (r.wall["now"] - r.once_warmup_s)
        need = cycles_for(r, 0.70)
        print(f"{r.name}: now {100 * r.measured_s / r.wall['now']:.1f} % measured; {steady:.1f} % without the warmups "
              f"paid once per model and shape ({r.once_warmup_s:.0f} s); 70 % at {need} cycles (this run: {r.cycles})")
    for r in runs:
        ci_table(r)
    first_batch_table(first_batch_excess(TRACKED))


def first_batch_table(fb: FirstBatch) -> None:
    cells = ", ".join(f"{k} {v:.1f} %" for k, v in fb.pieces.items())
    print(f"host_bound.yaml recorded on the H200 with today's code ({fb.wall_s:.0f} s): {cells}")
    print("  each experiment's first full-length batch (warmup) above the same batch's steady cost: "
          + ", ".join(f"{k.split('-bf16')[0].removeprefix('transformers-')} +{v:.1f} s" for k, v in fb.excess_s.items()))
    print(f"  had those batches run at their steady cost: {fb.share_if_steady():.1f} % measured "
          "(scripts/validate_h200_first_batch.py names the cause on the GPU)")


def ci_table(r: Replayed) -> None:
    print(f"{r.name}: 95 % CI half-width of adjusted J/output token (Student t over cycles) before | now; the first "
          "baseline's 95 % half-width / the windows' adjusted power (a shift common to all cycles) before | now; "
          "both in quadrature")
    for exp, c in r.ci.items():
        total_b = (c["before"] ** 2 + c["base_before"] ** 2) ** 0.5
        total_n = (c["now"] ** 2 + c["base_now"] ** 2) ** 0.5
        print(f"  {exp:<46} n {c['n']} adj {c['adjusted_w']:5.1f} W  CI ±{c['before']:.2f} | ±{c['now']:.2f} %  "
              f"baseline ±{c['base_before']:.3f} | ±{c['base_now']:.3f} %  combined ±{total_b:.2f} | ±{total_n:.2f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("ci", "walltime", "all"), default="all")
    parser.add_argument("--runs", type=int, default=2000, help="simulated campaigns per cell")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.part in ("walltime", "all"):
        walltime()
    if args.part == "walltime":
        return
    rng = np.random.default_rng(args.seed)
    print("95 % CI half-width of adjusted J/output token per experiment, by GPU-minutes spent on it "
          f"({args.runs} simulated campaigns per cell; cov = how often the interval holds the true mean)")
    head = f"{'path':<32} {'policy':<6} {'cycle CV':>8} {'s/cycle':>7}"
    head += "".join(f" | {b:>2} min: n   ±CI    cov" for b in BUDGETS_MIN) + " | min to ±5 %  ±3 %"
    print(head)
    for workload in (HOST_BOUND, GPU_BOUND):
        for name, (measurement, warmup, student) in POLICIES.items():
            cells, cv = [], float("nan")
            for budget in BUDGETS_MIN:
                n, half, cov, cv = simulate(workload, measurement, warmup, student, 60 * budget, args.runs, rng)
                cells.append(f" | {n:>9} {half:>6.1%} {cov:>5.0%}" if n >= 2 else f" | {n:>9} {'-':>6} {'-':>5}")
            need = [minutes_for(t, cv, workload, warmup) for t in (0.05, 0.03)]
            print(f"{workload.name:<32} {name:<6} {cv:>8.1%} {cycle_cost_s(workload, warmup, CALLS):>7.1f}"
                  + "".join(cells) + f" | {need[0]:>11.1f} {need[1]:>5.1f}")
    print("s/cycle: warmup + measured window + gap; a budget also pays the session baseline (15 s) and, new, one "
          "warmup of 13 calls. 'min to ±x %': GPU-minutes until the Student-t half-width of the typical spread "
          "reaches it.")


if __name__ == "__main__":
    main()
