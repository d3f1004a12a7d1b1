"""Session-end statistics cost: ``summarize`` over 1,000 experiments x 10 cycles x 10 metrics
(a synthetic frame in the shape ``load`` returns), and ``load`` over 1,000 real result files.

Usage: python benchmarks/bench_stats.py [--rounds 3] [--files 1000]
       python benchmarks/bench_stats.py --coverage [--campaigns 5000]   (CI coverage table, docs/statistics.md)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pytest_llenergy.results import RunDirectory, load, summarize
from pytest_llenergy.results.bootstrap import bca_mean_intervals
from pytest_llenergy.results.frame import frame_from_rows, result_row
from pytest_llenergy.results.schema import (
    BaselineInfo,
    DeviceEnergy,
    ExperimentResult,
    GapInfo,
    LatencyStats,
    LoadInfo,
    WarmupOutcome,
    WindowEnergy,
)

BACKENDS = ("transformers", "vllm", "tensorrt")


def template(experiment_id: str, cycle: int, energy: float, batch: int, backend: str) -> ExperimentResult:
    """A streamed result with every default metric present."""
    window = WindowEnergy(name="generate", source="nvml", duration_s=2.0, energy_j=energy, counter_energy_j=energy,
                          integral_energy_j=1.003 * energy, disagreement_pct=0.3, adjusted_energy_j=0.6 * energy,
                          baseline_power_w=120.0, mean_power_w=energy / 2, peak_power_w=energy / 1.5, input_tokens=256,
                          output_tokens=128, n_samples=100, sample_hz=50.0,
                          devices=[DeviceEnergy(device="gpu0", name="NVIDIA H200", energy_j=energy, peak_memory_mb=4096.0,
                                                mean_utilization_pct=90.0, throttle_s={"power_cap": 0.0})])
    config = {"backend": backend, "model": {"name": "gpt2"}, "precision": "bfloat16", "workload": {"batch_size": batch}}
    return ExperimentResult(
        campaign="bench", campaign_hash="0", run_id="bench", experiment_id=experiment_id, experiment_index=1,
        experiments_total=1, cycle=cycle, cycles_total=10, item_id=f"c{cycle}-{experiment_id}", config=config,
        backend=backend, model="gpt2", started_at="2026-01-01T00:00:00+00:00", duration_s=2.0, input_tokens=256,
        output_tokens=128, total_tokens=384, tokens_per_s=192.0, energy=window, windows=[window],
        latency=LatencyStats(mode="streaming", ttft_ms_mean=12.0, itl_ms_mean=3.0),
        baseline=BaselineInfo(method="cached", power_w={"gpu0": 120.0}, sd_w={"gpu0": 1.5}, n_samples=500),
        warmup=WarmupOutcome(mode="convergence", converged=True, iterations=12, final_cv=0.03,
                             latencies_s=[0.1 + 0.001 * i for i in range(12)]),
        load=LoadInfo(cold=cycle == 1, load_time_s=2.0), gap=GapInfo(kind="adaptive", waited_s=4.0),
        peak_memory_mb=2048.0, timeseries_path=f"timeseries/{experiment_id}__c{cycle}.parquet")


def synthetic_frame(n_experiments: int = 1000, n_cycles: int = 10, seed: int = 0) -> pd.DataFrame:
    """Rows shaped like ``load``'s, with lognormal cycle-to-cycle noise around a per-experiment level."""
    rng = np.random.default_rng(seed)
    base = result_row(template("x", 1, 100.0, 1, "transformers"))
    rows = []
    for e in range(n_experiments):
        level, batch, backend = rng.uniform(50, 500), 2 ** (e % 8), BACKENDS[e % 3]
        for c in range(1, n_cycles + 1):
            energy = level * rng.lognormal(0, 0.03)
            row = dict(base, experiment_id=f"{backend}-gpt2-bs{batch}-{e:04d}", cycle=c, backend=backend, batch_size=batch)
            row.update({"config.backend": backend, "config.workload.batch_size": batch, "energy_j": energy,
                        "energy_adjusted_j": 0.6 * energy, "energy_per_output_token_j": energy / 128,
                        "energy_per_token_j": energy / 384, "adjusted_energy_per_output_token_j": 0.6 * energy / 128,
                        "adjusted_energy_per_token_j": 0.6 * energy / 384, "tokens_per_s": 38_400 / energy,
                        "mean_power_w": energy / 2 * rng.lognormal(0, 0.01), "ttft_ms_mean": 12 * rng.lognormal(0, 0.05),
                        "itl_ms_mean": 3 * rng.lognormal(0, 0.05)})
            rows.append(row)
    return frame_from_rows(rows)


def timed(fn, rounds: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()`` over ``rounds`` runs."""
    wall, cpu = [], []
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def bench(rounds: int, files: int) -> None:
    df = synthetic_frame()
    metrics = sum(df[m].notna().any() for m in ("energy_j", "energy_adjusted_j", "energy_per_output_token_j",
                                                  "energy_per_token_j", "adjusted_energy_per_output_token_j",
                                                  "adjusted_energy_per_token_j", "tokens_per_s", "mean_power_w",
                                                  "ttft_ms_mean", "itl_ms_mean"))
    print(f"summarize: {df['experiment_id'].nunique():,} experiments x 10 cycles x {metrics} metrics, 10,000 resamples (BCa)")
    for group_by in (None, ["backend", "workload.batch_size"]):
        wall, cpu = timed(lambda g=group_by: summarize(df, seed=1, group_by=g), rounds)
        print(f"  group_by={group_by}: {wall:6.2f} s wall, {cpu:6.2f} s CPU (median of {rounds})")
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDirectory(Path(tmp) / "bench" / "run")
        rng = np.random.default_rng(1)
        for i in range(files):
            run.write_result(template(f"transformers-gpt2-bs1-{i // 10:04d}", i % 10 + 1, float(rng.uniform(50, 500)), 1,
                                      "transformers"))
        wall, cpu = timed(lambda: load(run.path), rounds)
        size = sum(f.stat().st_size for f in run.experiments_dir.glob("*.json")) / files
        print(f"load: {files:,} result files (~{size / 1024:.1f} KiB each): {wall:6.2f} s wall, {cpu:6.2f} s CPU "
              f"(median of {rounds})")


def coverage(campaigns: int, n_resamples: int) -> None:
    """How often the 95 % interval of the mean covers the true mean, by n, with and without expansion."""
    dists = {"normal(100, 5)": (lambda rng, size: rng.normal(100, 5, size), 100.0),
             "lognormal(0, 0.5)": (lambda rng, size: rng.lognormal(0, 0.5, size), float(np.exp(0.125)))}
    print(f"coverage of the 95 % CI of the mean, {campaigns:,} simulated campaigns each, {n_resamples:,} resamples")
    print("| distribution | n | BCa, expanded (default) | BCa, plain (scipy) |\n|---|---|---|---|")
    for name, (draw, truth) in dists.items():
        for n in (3, 5, 10):
            x = draw(np.random.default_rng(20260101 + n), (campaigns, n))
            cells = []
            for expand in (True, False):
                r = bca_mean_intervals(x, n_resamples=n_resamples, rng=np.random.default_rng(n), expand=expand)
                cells.append(f"{np.mean((r.low <= truth) & (truth <= r.high)):.3f}")
            print(f"| {name} | {n} | {cells[0]} | {cells[1]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--coverage", action="store_true", help="print the CI coverage table instead")
    parser.add_argument("--campaigns", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=10_000)
    args = parser.parse_args()
    if args.coverage:
        coverage(args.campaigns, args.resamples)
    else:
        bench(args.rounds, args.files)


if __name__ == "__main__":
    main()
