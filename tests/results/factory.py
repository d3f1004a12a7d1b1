"""Build ExperimentResult objects and run directories for the results tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pytest_llenergy.results import RunDirectory
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

OUTPUT_TOKENS = 128
INPUT_TOKENS = 256


def make_config(backend: str = "transformers", model: str = "gpt2", batch_size: int = 8,
                precision: str = "bfloat16", **workload: Any) -> dict[str, Any]:
    return {
        "name": None, "backend": backend, "model": {"name": model, "weights": "random", "revision": None, "gguf_file": None},
        "precision": precision,
        "workload": {"prompts": "synthetic", "num_prompts": 8, "input_tokens": 32, "output_tokens": 16,
                     "batch_size": batch_size, "seed": 0, "streaming": False, **workload},
        "decoder": {"preset": None, "temperature": None}, backend: {"attn": "sdpa"},
    }


def make_result(experiment_id: str = "transformers-gpt2-bs8-bf16-aaaa", cycle: int = 1, *, energy_j: float | None = 100.0,
                adjusted_j: float | None = 60.0, duration_s: float = 2.0, status: str = "passed",
                cycles_total: int = 3, config: dict[str, Any] | None = None, source: str = "nvml",
                estimated: bool = False, simulated: bool = False, throttle_s: dict[str, float] | None = None,
                flags: list[str] | None = None, streaming: bool = False, run_id: str = "20260101-000000",
                campaign: str = "demo", timeseries_path: str | None = None) -> ExperimentResult:
    """One (experiment, cycle) with plausible figures; ``energy_j=None`` leaves energy unmeasured."""
    config = config or make_config()
    throttle_s = throttle_s or {}

    def per(joules: float | None, tokens: int = OUTPUT_TOKENS) -> float | None:
        return None if joules is None else joules / tokens

    window = None
    if energy_j is not None:
        window = WindowEnergy(
            name="generate", source=source, estimated=estimated, simulated=simulated, duration_s=duration_s,
            energy_j=energy_j, counter_energy_j=energy_j, integral_energy_j=energy_j * 1.003, disagreement_pct=0.3,
            adjusted_energy_j=adjusted_j, baseline_power_w=20.0, mean_power_w=energy_j / duration_s,
            peak_power_w=energy_j / duration_s * 1.2, input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS,
            energy_per_output_token_j=per(energy_j), energy_per_token_j=per(energy_j, OUTPUT_TOKENS + INPUT_TOKENS),
            adjusted_energy_per_output_token_j=per(adjusted_j), adjusted_energy_per_token_j=per(adjusted_j, OUTPUT_TOKENS + INPUT_TOKENS),
            n_samples=100, sample_hz=50.0, throttled=bool(throttle_s), throttle_s=throttle_s, flags=flags or [],
            devices=[DeviceEnergy(device="gpu0", name="NVIDIA H200", energy_j=energy_j, peak_memory_mb=2048.0,
                                  mean_utilization_pct=87.5, max_temperature_c=55.0, throttle_s=throttle_s)],
        )
    latency = LatencyStats(mode="streaming", ttft_ms_mean=12.0 + cycle, itl_ms_mean=3.0 + 0.1 * cycle) if streaming \
        else LatencyStats(mode="per_batch", batch_latency_s_mean=duration_s)
    return ExperimentResult(
        campaign=campaign, campaign_hash="abc", run_id=run_id, experiment_id=experiment_id, experiment_index=1,
        experiments_total=1, cycle=cycle, cycles_total=cycles_total, item_id=f"c{cycle}-{experiment_id}",
        status=status, error="boom" if status == "failed" else None, config=config, backend=config["backend"],
        model=config["model"]["name"], started_at="2026-01-01T00:00:00+00:00", duration_s=duration_s,
        input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS, total_tokens=INPUT_TOKENS + OUTPUT_TOKENS,
        tokens_per_s=(INPUT_TOKENS + OUTPUT_TOKENS) / duration_s, output_tokens_per_s=OUTPUT_TOKENS / duration_s,
        latency=latency, energy=window, windows=[window] if window else [],
        baseline=BaselineInfo(method="cached", power_w={"gpu0": 20.0}, deep_idle_w={"gpu0": 15.0}),
        warmup=WarmupOutcome(mode="convergence", converged=cycle != 2, iterations=7, final_cv=0.03),
        load=LoadInfo(cold=cycle == 1, load_time_s=1.5 if cycle == 1 else None),
        gap=GapInfo(kind="adaptive", waited_s=3.0), peak_memory_mb=1024.0, timeseries_path=timeseries_path,
    )


def write_run(root: Path, experiments: dict[str, list[float]], *, config_of: dict[str, dict[str, Any]] | None = None,
              run_id: str = "20260101-000000", **kwargs: Any) -> RunDirectory:
    """A run dir with one result per (experiment, value); adjusted energy is 60 % of raw."""
    run = RunDirectory(root / "demo" / run_id)
    for exp_id, values in experiments.items():
        config = (config_of or {}).get(exp_id)
        for cycle, value in enumerate(values, start=1):
            run.write_result(make_result(exp_id, cycle, energy_j=value, adjusted_j=0.6 * value, cycles_total=len(values),
                                         config=config, run_id=run_id, **kwargs))
    return run


def synthetic_values(n_experiments: int, n_cycles: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = rng.uniform(50, 500, size=(n_experiments, 1))
    return level * rng.lognormal(0, 0.03, size=(n_experiments, n_cycles))
