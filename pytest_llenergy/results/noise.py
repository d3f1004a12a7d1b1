"""A cycle-level model of the H200's measured noise, for simulations (benchmarks, gate tests).

Each simulated cycle measures one window of ``calls`` generate calls and reports adjusted J per
output token. The noise, from the H200 runs (issue 13, docs/validation, h200_trace.csv):

- duration between cycles: host-bound HF ``generate`` varies 8-14 % (per call) with a part shared
  by a cycle's calls; the GPU-bound static-cache path 1-2 %;
- mean power between cycles (``power_sd_w``);
- the idle baseline: 121-126 W, re-measured with ~1 W error/drift per cycle (``baseline_sd_w``),
  plus an offset shared by a whole run (``run_offset_w``, 1.1 W: the spread of the reference
  experiment's run means over two days and three H200 machines, 2.2 %; within one day's machines
  it was 1.2 %);
- the energy counter moves every 100 ms, so each window edge gains or loses up to one update
  (counter-only energy), or a residual after the edge correction.

A regression ``factor`` scales the work's duration (a slower configuration), so adjusted energy
scales by it. ``cycle_cost_s`` prices a cycle in GPU-seconds under a warmup policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IDLE_W = 121.6  # H200 P0 idle (h200_trace.csv)


@dataclass(frozen=True)
class Workload:
    """One generate call's duration, output tokens and power, and its duration noise."""

    name: str
    call_s: float
    tokens: int
    power_w: float
    call_cv: float  # independent between calls
    cycle_cv: float  # shared by a cycle's calls
    power_sd_w: float

    @property
    def adjusted_j_per_token(self) -> float:
        return (self.power_w - IDLE_W) * self.call_s / self.tokens


# llama-3.2-1b shape, random weights, bf16, 128 in / 128 out. Host-bound: batch 4 (issue 13: the
# baseline was 75-96 % of the raw energy, duration CV 8-14 %). GPU-bound: batch 32, static KV cache
# + CUDA graphs (duration CV 1-2 %).
HOST_BOUND = Workload("host-bound HF generate, bs 4", call_s=2.5, tokens=4 * 128, power_w=145.0,
                      call_cv=0.08, cycle_cv=0.06, power_sd_w=1.0)
GPU_BOUND = Workload("GPU-bound static cache, bs 32", call_s=0.8, tokens=32 * 128, power_w=420.0,
                     call_cv=0.012, cycle_cv=0.008, power_sd_w=3.0)
# Host-bound at batch 32 (eager HF generate, dynamic cache, sdpa): calibrated on the reference
# experiment of the eight-cycle impact campaigns (docs/validation/data/impact-h200-3, 9 runs on three
# H200s over two days): per-cycle CV 2.26 % (rms), run means' sd 2.2 % (1.2 % on one day), ~171 W over a ~126 W baseline; the
# duration varied 4-27 % between cycles but energy tracked the work, so the duration noise here is small.
# tests/results/test_noise_calibration.py checks the model against those files.
HOST_BOUND_BS32 = Workload("host-bound HF generate, bs 32", call_s=1.6, tokens=32 * 128, power_w=171.0,
                           call_cv=0.008, cycle_cv=0.008, power_sd_w=0.4)


@dataclass(frozen=True)
class Measurement:
    """How energy is measured: baseline error, run offset, counter quantisation and edge correction."""

    baseline_sd_w: float = 1.0
    run_offset_w: float = 1.1
    quantum_s: float = 0.1
    edge_corrected: bool = True
    edge_residual_s: float = 0.003  # sd of the edge error left after the correction (1 s windows: <= 1 %)


TODAY = Measurement(edge_corrected=False)
NEW = Measurement(edge_corrected=True)


def cycle_values(rng: np.random.Generator, workload: Workload, measurement: Measurement, *, runs: int, cycles: int,
                 calls: int, factor: float = 1.0, offsets: np.ndarray | None = None) -> np.ndarray:
    """Adjusted J per output token, shape (runs, cycles); ``offsets`` (runs,) overrides the run offsets."""
    shape = (runs, cycles)
    w = workload
    duration = w.call_s * factor * (calls * (1 + w.cycle_cv * rng.standard_normal(shape))
                                    + np.sqrt(calls) * w.call_cv * rng.standard_normal(shape))
    power = w.power_w + w.power_sd_w * rng.standard_normal(shape)
    energy = power * duration
    if measurement.edge_corrected:
        energy += power * measurement.edge_residual_s * rng.standard_normal(shape)
    else:  # the counter delta: each edge gains or loses part of a 100 ms update
        energy += power * measurement.quantum_s * (rng.random(shape) - rng.random(shape))
    if offsets is None:
        offsets = measurement.run_offset_w * rng.standard_normal(runs)
    baseline = IDLE_W + offsets[:, None] + measurement.baseline_sd_w * rng.standard_normal(shape)
    return (energy - baseline * duration) / (calls * w.tokens)


@dataclass(frozen=True)
class WarmupPolicy:
    """GPU-seconds around each measured window: warmup calls per cycle and once, gaps and baseline."""

    name: str
    calls_per_cycle: float  # warmup calls before every window
    calls_once: float  # warmup calls once per experiment and process
    gap_s: float = 3.0  # adaptive thermal gap + baseline re-check per cycle
    baseline_s: float = 15.0  # the session's idle baseline, once


# Today: convergence warmup of the whole batch before every window, 6-20 runs (mean 13).
# New: converged once per model and shape (a cheap probe, ~13 calls' worth, capped by
# warmup.max_time_s), then one re-warm call after each gap.
WARMUP_TODAY = WarmupPolicy("today: convergence warmup every cycle", calls_per_cycle=13.0, calls_once=0.0)
WARMUP_NEW = WarmupPolicy("new: warmup once + 1 re-warm call", calls_per_cycle=1.0, calls_once=13.0)


def cycle_cost_s(workload: Workload, policy: WarmupPolicy, calls: int) -> float:
    """GPU-seconds of one cycle: warmup, the measured window and the gap."""
    return workload.call_s * (policy.calls_per_cycle + calls) + policy.gap_s


def run_cost_s(workload: Workload, policy: WarmupPolicy, calls: int, cycles: int) -> float:
    """GPU-seconds of one experiment over ``cycles`` cycles in one process (model load excluded)."""
    return policy.baseline_s + workload.call_s * policy.calls_once + cycles * cycle_cost_s(workload, policy, calls)
