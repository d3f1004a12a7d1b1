#!/usr/bin/env python3
"""Validate the energy layer on a real GPU (written for one H200); prints and writes JSON.

    python scripts/validate_h200_energy.py --out h200_validation.json        # ~5-6 min
    python scripts/validate_h200_energy.py --source replay --quick            # CPU dry run

Parts, each isolated (an error is recorded in the JSON, the next part still runs):
  a  idle baseline: deep idle before CUDA starts (10 s), then P0 idle after a tiny kernel (30 s)
  b  10 s windows of a bf16 8192x8192 matmul loop and a transformers generate loop (random
     llama-style ~1B model, bf16, batch 32, 128 prompt + fixed new tokens): counter energy vs
     the sampled integral at 10, 50 and 100 Hz polling and via the driver sample buffer, all
     sampling the same window
  c  overhead: output tokens/s of generate with a 100 Hz polling sampler vs none, alternated
  d  repeatability: baseline-adjusted J per output token over 5 identical generate windows, CV
  e  cost of one measure() window's edges (empty body), median of 20
Needs torch, transformers, nvidia-ml-py, numpy (pandas optional); never pydantic.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from pytest_llenergy.energy import (  # noqa: E402
    EnergyMeter,
    Sampler,
    collect_environment,
    describe,
    measure_baseline,
    resolve_source,
    wait_until_settled,
)
from pytest_llenergy.energy.measurement import clip_series, trapezoid  # noqa: E402


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Validate pytest-llenergy's energy layer on a GPU.")
    ap.add_argument("--source", default="nvml", help="nvml (default), auto, replay, replay:PATH")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--quick", action="store_true", help="short durations (dry runs)")
    ap.add_argument("--parts", default="abcde", help="which parts to run, e.g. 'ab'")
    ap.add_argument("--window-s", type=float, default=10.0)
    ap.add_argument("--baseline-s", type=float, default=30.0)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5, help="part d repeats and part c pairs")
    args = ap.parse_args()
    if args.quick:
        args.window_s, args.baseline_s = min(args.window_s, 2.0), min(args.baseline_s, 3.0)
        args.repeats = min(args.repeats, 3)
    return args


class Workloads:
    """The matmul and generate workloads, on CUDA when available, else tiny on CPU."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        self.torch = torch
        self.cuda = torch.cuda.is_available()
        self.device = "cuda" if self.cuda else "cpu"
        self.sync: Callable[[], None] | None = torch.cuda.synchronize if self.cuda else None
        torch.manual_seed(0)
        n = 8192 if self.cuda else 256
        dtype = torch.bfloat16 if self.cuda else torch.float32
        self.a = torch.randn(n, n, device=self.device, dtype=dtype)
        self.b = torch.randn(n, n, device=self.device, dtype=dtype)
        self.batch = args.batch if self.cuda else 2
        self.prompt = 128 if self.cuda else 16
        self.new_tokens = args.new_tokens if self.cuda else 8
        self.model = None

    def prime(self) -> None:
        """A tiny kernel: brings an idle GPU to P0 (the state the workload runs in)."""
        (self.a[:64, :64] @ self.b[:64, :64]).sum().item()

    def matmul(self) -> int:
        for _ in range(10):
            self.a @ self.b
        if self.sync:
            self.sync()
        return 0

    def build_model(self) -> None:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch = self.torch
        if self.cuda:
            cfg = LlamaConfig(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                              num_attention_heads=32, num_key_value_heads=8, vocab_size=32000)
        else:
            cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, vocab_size=1000)
        with torch.device(self.device):  # random weights, built on the device (no download)
            model = LlamaForCausalLM(cfg)
        self.model = model.to(torch.bfloat16 if self.cuda else torch.float32).eval()
        self.model.generation_config.eos_token_id = None
        self.model.generation_config.pad_token_id = 0
        self.ids = torch.randint(1, cfg.vocab_size, (self.batch, self.prompt), device=self.device)
        self.n_params = sum(p.numel() for p in self.model.parameters())

    def generate(self) -> int:
        """One generate call; returns output tokens (exact: min = max new tokens)."""
        with self.torch.inference_mode():
            out = self.model.generate(self.ids, attention_mask=self.torch.ones_like(self.ids),
                                      max_new_tokens=self.new_tokens, min_new_tokens=self.new_tokens,
                                      do_sample=False)
        return int((out.shape[1] - self.prompt) * out.shape[0])

    @property
    def input_tokens(self) -> int:
        return self.batch * self.prompt


def run_for(fn: Callable[[], int], seconds: float) -> tuple[int, int]:
    """Call ``fn`` until ``seconds`` have passed; (calls, output tokens)."""
    t0, calls, tokens = time.perf_counter(), 0, 0
    while calls == 0 or time.perf_counter() - t0 < seconds:
        tokens += fn()
        calls += 1
    return calls, tokens


def part_a(ctx: dict[str, Any]) -> dict[str, Any]:
    src, args = ctx["source"], ctx["args"]
    deep = measure_baseline(src, min(10.0, args.baseline_s))
    work = ctx["work"] = Workloads(args)
    work.prime()
    time.sleep(1.0)
    p0 = measure_baseline(src, args.baseline_s)
    ctx["baseline"] = p0
    return {"before_cuda": deep.to_info("fresh", 0.0), "p0_after_prime": p0.to_info("fresh", 0.0)}


def compare_window(ctx: dict[str, Any], fn: Callable[[], int], seconds: float) -> dict[str, Any]:
    """Counter vs sampled integrals, every sampler on the very same window."""
    src, work = ctx["source"], ctx["work"]
    samplers = {f"poll_{hz}hz": Sampler(src, hz, use_driver_buffer=False) for hz in (10, 50, 100)}
    samplers["driver_buffer"] = Sampler(src, 10, use_driver_buffer=True)
    if work.sync:
        work.sync()
    th0 = src.read_throttle()
    ta = src.clock()
    c0 = src.read_counters()
    t0 = 0.5 * (ta + src.clock())
    for s in samplers.values():
        s.start(t0)
    calls, tokens = run_for(fn, seconds)
    ta = src.clock()
    c1 = src.read_counters()
    t1 = 0.5 * (ta + src.clock())
    th1 = src.read_throttle()
    dur = t1 - t0
    counter = float(np.sum(c1 - c0)) if c0 is not None else None
    out: dict[str, Any] = {"duration_s": dur, "calls": calls, "output_tokens": tokens,
                           "counter_energy_j": counter,
                           "mean_power_w": counter / dur if counter else None,
                           "throttle_s": {k: float(np.max(th1[k] - th0[k])) / 1e9 for k in th0}
                           if th0 and th1 else None, "samplers": {}}
    for name, s in samplers.items():
        ts = s.stop(t1)
        tt, pp = clip_series(ts.t_s, ts.power_w, dur)
        integ = float(trapezoid(tt, pp).sum()) if tt.size else None
        out["samplers"][name] = {
            "mode": s.mode, "n": ts.n, "gaps": ts.gaps, "error": ts.error, "integral_j": integ,
            "vs_counter_pct": (integ - counter) / counter * 100 if integ and counter else None,
            "thread_cpu_s": ts.thread_cpu_s}
    return out


def part_b(ctx: dict[str, Any]) -> dict[str, Any]:
    work, args = ctx["work"], ctx["args"]
    work.matmul()
    res: dict[str, Any] = {"matmul": compare_window(ctx, work.matmul, args.window_s)}
    time.sleep(3.0 if not args.quick else 0.5)
    work.build_model()
    work.generate()  # warmup
    res["model_params"] = work.n_params
    res["generate"] = compare_window(ctx, work.generate, args.window_s)
    return res


def part_c(ctx: dict[str, Any]) -> dict[str, Any]:
    """Sampler overhead on a generate loop: off vs the default (driver buffer) vs 100 Hz polling.

    Modes alternate in rotating order each round; the loss is the median over rounds of the
    per-round ratio to "off", which cancels slow drift (clocks, temperature) between rounds.
    """
    work, args, src = ctx["work"], ctx["args"], ctx["source"]
    if work.model is None:
        work.build_model()
    t = time.perf_counter()
    work.generate()
    calls = max(1, round((args.window_s / 2) / (time.perf_counter() - t)))
    modes = ("off", "driver", "poll100")
    rates: dict[str, list[float]] = {m: [] for m in modes}
    for i in range(args.repeats):
        order = modes[i % 3:] + modes[:i % 3]
        for mode in order:
            sampler = None
            if mode != "off":
                sampler = Sampler(src, 100 if mode == "poll100" else 10, use_driver_buffer=mode == "driver")
                sampler.start()
            t0, tokens = time.perf_counter(), sum(work.generate() for _ in range(calls))
            rates[mode].append(tokens / (time.perf_counter() - t0))
            if sampler:
                sampler.stop()
    out: dict[str, Any] = {"calls_per_run": calls, "rounds": args.repeats, "tokens_per_s": rates}
    for mode in modes[1:]:
        ratios = [on / off for on, off in zip(rates[mode], rates["off"])]
        out[f"loss_pct_{mode}_median"] = (1 - statistics.median(ratios)) * 100
        out[f"loss_pct_{mode}_mean"] = (1 - statistics.mean(ratios)) * 100
    out["sd_off_pct"] = statistics.stdev(rates["off"]) / statistics.mean(rates["off"]) * 100 if args.repeats > 1 else None
    return out


def part_d(ctx: dict[str, Any]) -> dict[str, Any]:
    work, args, src = ctx["work"], ctx["args"], ctx["source"]
    if work.model is None:
        work.build_model()
    base = ctx.get("baseline") or measure_baseline(src, args.baseline_s)
    meter = EnergyMeter(src, sample_hz=10, baseline=base, cuda_sync=work.sync)
    runs = []
    for _ in range(args.repeats):
        temps = {k: v for k, v in base.temperature_c.items()}
        gap = wait_until_settled(src, base.power_w, temps, max_wait_s=5 if args.quick else 30)
        time.sleep(random.random() * 0.1)  # random phase against the 100 ms counter
        with meter.measure("generate") as w:
            calls, tokens = run_for(work.generate, args.window_s)
            w.record(input_tokens=calls * work.input_tokens, output_tokens=tokens)
        m = w.result.to_dict()
        m.pop("devices")
        m["gap"] = gap.to_info("adaptive")
        runs.append(m)
    adj = [r["adjusted_energy_per_output_token_j"] for r in runs]
    raw = [r["energy_per_output_token_j"] for r in runs]

    def cv(xs: list[float | None]) -> float | None:
        xs = [x for x in xs if x is not None]
        return statistics.stdev(xs) / statistics.mean(xs) if len(xs) > 1 and statistics.mean(xs) else None

    return {"runs": runs, "adjusted_j_per_output_token": adj, "cv_adjusted": cv(adj),
            "raw_j_per_output_token": raw, "cv_raw": cv(raw)}


def part_e(ctx: dict[str, Any]) -> dict[str, Any]:
    src, work = ctx["source"], ctx.get("work")
    meter = EnergyMeter(src, sample_hz=10, cuda_sync=work.sync if work else None)
    enter, exit_, total = [], [], []
    for _ in range(20):
        t0 = time.perf_counter()
        with meter.measure("edges"):
            t1 = time.perf_counter()
        t2 = time.perf_counter()
        enter.append((t1 - t0) * 1e3)
        exit_.append((t2 - t1) * 1e3)
        total.append((t2 - t0) * 1e3)
    t = time.perf_counter()
    for _ in range(20):
        src.read_counters()
    return {"enter_ms_median": statistics.median(enter), "exit_ms_median": statistics.median(exit_),
            "total_ms_median": statistics.median(total), "total_ms_max": max(total),
            "counter_read_ms": (time.perf_counter() - t) / 20 * 1e3}


def main() -> int:
    args = parse_args()
    t_start = time.perf_counter()
    source, reason = resolve_source(args.source)
    if args.source in ("nvml", "auto") and source.kind == "nvml" and len(source.devices()) > 1:
        first = source.devices()[0].index
        source.close()
        source, reason = resolve_source("nvml", devices=[first])
    ctx: dict[str, Any] = {"source": source, "args": args}
    result: dict[str, Any] = {"source": reason, "describe": describe(source), "quick": args.quick,
                              "errors": {}}
    try:
        result["environment"] = collect_environment(source)
    except Exception:
        result["errors"]["environment"] = traceback.format_exc()
    if "work" not in ctx and "a" not in args.parts:
        ctx["work"] = _try_workloads(args, result)
    for part, fn in (("a", part_a), ("b", part_b), ("c", part_c), ("d", part_d), ("e", part_e)):
        if part not in args.parts:
            continue
        t = time.perf_counter()
        try:
            result[part] = fn(ctx)
        except Exception:
            result["errors"][part] = traceback.format_exc()
        result.setdefault("part_seconds", {})[part] = round(time.perf_counter() - t, 1)
        _write(result, args.out)
    result["total_seconds"] = round(time.perf_counter() - t_start, 1)
    _write(result, args.out)
    print(json.dumps(result, indent=1, default=_jsonable))
    source.close()
    return 0


def _try_workloads(args: argparse.Namespace, result: dict[str, Any]) -> Workloads | None:
    try:
        return Workloads(args)
    except Exception:
        result["errors"]["workloads"] = traceback.format_exc()
        return None


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _write(result: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        path.write_text(json.dumps(result, indent=1, default=_jsonable))


if __name__ == "__main__":
    sys.exit(main())
