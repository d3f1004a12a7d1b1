#!/usr/bin/env python3
"""Validate the energy-gate recipe of docs/ci.md on a real GPU (written for one H200); prints and writes JSON.

    python3 scripts/validate_h200_gate.py --out $OUT                # GPU-bound recipe, ~5 min on an H200
    python3 scripts/validate_h200_gate.py --path host --out $OUT    # issue 20's host-bound runs
    python3 scripts/validate_h200_gate.py --source replay --quick   # CPU dry run

``--path gpu`` (the default) is the recipe of docs/ci.md: static KV cache + compiled decoding
(transformers compiles the decode step when the cache is static), batch 32, 128 prompt and 128 new
tokens, 2 calls per window, 25 cycles, the baseline taken after the compile warmup (the GPU in its
P0 state, as the workload runs). Four runs, one model compiled once:

  reference   the saved run
  control     the same again (no change: the gate must pass)
  plus1       1 % more decode steps than it counts (129 of 128: a change at the gate's margin)
  plus3       3 % more decode steps than it counts (132 of 128: the regression the recipe must catch)

The regressions are made on purpose and of known size: every window generates the extra tokens and
records only the nominal 128 per sequence, as a change that wastes decode work would. The cache
length is fixed (``max_cache_len``) so every run replays the same compiled graph.

``--path host`` is issue 20's check on the host-bound path:
A random-weight llama-style model (~1B, bf16, built on the GPU: no download) generates a fixed
workload. Runs in sequence, each like one CI job of the recipe (warmup once, then per cycle a
short gap, one re-warm call and a measured window of ``--calls`` generate calls, edge-corrected
energy where the meter provides it).

  reference   sdpa attention, batch B        (the saved run)
  control     the same again                 (no change: the gate must pass)
  eager       eager attention, batch B       (a real regression on purpose; fails when >= the margin)
  half-batch  sdpa, batch B/2                (a large regression: the gate must fail)

Each later run is compared with the reference by the gate's own test
(``results.compare.compare_values``, rule adjusted_energy_per_output_token:3%, alpha 0.01).
Prints per run: cycles, mean adjusted J/output token, cycle CV, GPU-seconds; per comparison: the
change, its 95 % CI, the p-value and the verdict. Needs torch, transformers, nvidia-ml-py, numpy, scipy.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llenergy.energy import EnergyMeter, describe, measure_baseline, resolve_source  # noqa: E402
from pytest_llenergy.results.compare import compare_values, parse_rules  # noqa: E402

RULE = "adjusted_energy_per_output_token:3%"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Validate the energy-gate recipe on a GPU.")
    ap.add_argument("--source", default="nvml", help="nvml (default), auto, replay, replay:PATH")
    ap.add_argument("--out", type=Path, default=None, help="a directory (gate.json is written there) or a .json path")
    ap.add_argument("--quick", action="store_true", help="tiny model and few cycles (CPU dry runs)")
    ap.add_argument("--cycles", type=int, default=25, help="cycles per run (the recipe: 25)")
    ap.add_argument("--calls", type=int, default=2, help="generate calls per measured window (the recipe: 2)")
    ap.add_argument("--path", choices=("gpu", "host"), default="gpu",
                    help="gpu: static cache + compiled decoding (the recipe); host: dynamic cache, issue 20's runs")
    ap.add_argument("--batch", type=int, default=None, help="default: 32 (gpu), 64 (host)")
    ap.add_argument("--new-tokens", type=int, default=None, help="default: 128 (gpu), 24 (host)")
    ap.add_argument("--gap-s", type=float, default=0.3, help="pause before each cycle's re-warm call")
    ap.add_argument("--baseline-s", type=float, default=10.0)
    ap.add_argument("--budget-s", type=float, default=225.0, help="skip runs that would not finish by then")
    args = ap.parse_args()
    gpu = args.path == "gpu"
    args.batch = args.batch if args.batch is not None else (32 if gpu else 64)
    args.new_tokens = args.new_tokens if args.new_tokens is not None else (128 if gpu else 24)
    if args.quick:
        args.cycles, args.baseline_s, args.gap_s = min(args.cycles, 4), min(args.baseline_s, 2.0), 0.05
        args.batch, args.new_tokens, args.budget_s = min(args.batch, 2), min(args.new_tokens, 4), float("inf")
    return args


class Generator:
    """One model (attention implementation fixed at build) and its generate call."""

    def __init__(self, attention: str, quick: bool, static: bool = False, max_cache_len: int | None = None) -> None:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.sync = torch.cuda.synchronize if self.device == "cuda" else None
        if quick or self.device == "cpu":
            cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, vocab_size=1000)
        else:
            cfg = LlamaConfig(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                              num_key_value_heads=8, vocab_size=32000)
        cfg._attn_implementation = attention
        torch.manual_seed(0)  # the same weights for every attention implementation
        with torch.device(self.device):
            model = LlamaForCausalLM(cfg)
        self.model = model.to(torch.bfloat16 if self.device == "cuda" else torch.float32).eval()
        self.model.generation_config.eos_token_id = None
        self.model.generation_config.pad_token_id = 0
        self.vocab = cfg.vocab_size
        self.prompt = 128 if self.device == "cuda" and not quick else 16
        self.cache: dict[str, Any] = {"cache_implementation": "static", "max_cache_len": max_cache_len} if static else {}

    def generate(self, batch: int, new_tokens: int, counted: int | None = None) -> tuple[int, int]:
        """One generate call of ``new_tokens``; (input tokens, output tokens counted: ``counted`` per sequence if given)."""
        torch = self.torch
        ids = torch.randint(1, self.vocab, (batch, self.prompt), device=self.device,
                            generator=torch.Generator(self.device).manual_seed(1))
        with torch.inference_mode():
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                      min_new_tokens=new_tokens, do_sample=False, **self.cache)
        generated = int(out.shape[1] - self.prompt)
        return batch * self.prompt, int((generated if counted is None else min(counted, generated)) * out.shape[0])


def one_run(name: str, gen: Generator, batch: int, args: argparse.Namespace, source: Any, baseline: Any,
            extra: float = 0.0) -> dict[str, Any]:
    """Warmup once, then ``args.cycles`` cycles of gap, one re-warm call and a measured window.

    ``extra``: the share of decode steps generated on top of ``args.new_tokens`` and not counted
    (a regression of known size made on purpose).
    """
    t0 = time.perf_counter()
    counted = args.new_tokens
    new_tokens = counted + round(counted * extra)
    for _ in range(3):  # warmup once per model and shape
        gen.generate(batch, new_tokens)
    meter = EnergyMeter(source, sample_hz=50, baseline=baseline, cuda_sync=gen.sync)
    cycles = []
    for _ in range(args.cycles):
        time.sleep(args.gap_s + random.random() * 0.1)  # the gap, at a random phase against the 100 ms counter
        gen.generate(batch, new_tokens)  # re-warm
        with meter.measure(name) as window:
            tokens_in = tokens_out = 0
            for _ in range(args.calls):
                i, o = gen.generate(batch, new_tokens, counted)
                tokens_in, tokens_out = tokens_in + i, tokens_out + o
            window.record(input_tokens=tokens_in, output_tokens=tokens_out)
        r = window.result.to_dict()
        cycles.append({k: r.get(k) for k in ("adjusted_energy_per_output_token_j", "energy_per_output_token_j",
                                            "duration_s", "mean_power_w", "energy_j", "energy_adjusted_j",
                                            "uncertainty_j", "adjusted_uncertainty_j", "flags")})
    values = [c["adjusted_energy_per_output_token_j"] for c in cycles if c["adjusted_energy_per_output_token_j"]]
    mean = statistics.mean(values) if values else None
    return {"name": name, "attention": gen.model.config._attn_implementation, "batch": batch,
            "new_tokens": new_tokens, "counted_tokens": counted, "extra_decode_share": new_tokens / counted - 1, "calls_per_window": args.calls, "cycles": cycles, "values": values,
            "mean": mean, "cycle_cv": statistics.stdev(values) / mean if len(values) > 1 and mean else None,
            "gpu_seconds": round(time.perf_counter() - t0, 1)}


def main() -> int:
    args = parse_args()
    start = time.perf_counter()
    source, reason = resolve_source(args.source)
    result: dict[str, Any] = {"source": reason, "describe": describe(source), "rule": RULE, "args": vars(args) | {
        "out": str(args.out)}, "runs": {}, "comparisons": {}, "errors": {}}
    models: dict[str, Generator] = {}
    gpu = args.path == "gpu"
    if gpu:  # compile first, so the baseline sees the GPU in the state the workload runs in (P0)
        cache_len = 16 * -(-(128 + round(args.new_tokens * 1.03) + 16) // 16)
        models["sdpa"] = Generator("sdpa", args.quick, static=True, max_cache_len=cache_len)
        t = time.perf_counter()
        for _ in range(3):
            models["sdpa"].generate(args.batch, args.new_tokens)
        result["compile_warmup_s"] = round(time.perf_counter() - t, 1)
        plan = [("reference", "sdpa", args.batch, 0.0), ("control", "sdpa", args.batch, 0.0),
                ("plus1", "sdpa", args.batch, 0.01), ("plus3", "sdpa", args.batch, 0.03)]
    else:
        plan = [("reference", "sdpa", args.batch, 0.0), ("control", "sdpa", args.batch, 0.0),
                ("eager", "eager", args.batch, 0.0), ("half-batch", "sdpa", max(1, args.batch // 2), 0.0)]
    baseline = measure_baseline(source, args.baseline_s)
    result["baseline_w"] = baseline.power_w
    for name, attention, batch, extra in plan:
        spent = time.perf_counter() - start
        last = max((r["gpu_seconds"] for r in result["runs"].values()), default=0.0)
        if spent + last > args.budget_s:
            result["errors"][name] = f"skipped: {spent:.0f} s spent, a run takes ~{last:.0f} s, budget {args.budget_s:.0f} s"
            continue
        try:
            if attention not in models:
                models[attention] = Generator(attention, args.quick)
            result["runs"][name] = one_run(name, models[attention], batch, args, source, baseline, extra)
        except Exception:
            result["errors"][name] = traceback.format_exc()
        _write(result, args.out)
    rule = parse_rules(RULE)[0]
    ref = result["runs"].get("reference")
    for name, run in result["runs"].items():
        if name == "reference" or ref is None:
            continue
        c = compare_values(name, ref["values"], run["values"], rule)
        if c is not None:
            result["comparisons"][name] = {"change_pct": (c.ratio - 1) * 100, "ci_pct": [
                None if c.ci_low is None else (c.ci_low - 1) * 100, None if c.ci_high is None else (c.ci_high - 1) * 100],
                "p_value": c.p_value, "regression": c.regression, "message": c.message()}
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    _write(result, args.out)
    _print(result)
    source.close()
    return 0


def _print(result: dict[str, Any]) -> None:
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1, default=str))
    print(f"\nbaseline {result['baseline_w']} W; gate rule {result['rule']}, alpha 0.01")
    print(f"{'run':<11} {'attn':<6} {'batch':>5} {'cycles':>6} {'adj J/out tok':>13} {'cycle CV':>8} {'GPU-s':>6}  verdict")
    for name, run in result["runs"].items():
        c = result["comparisons"].get(name)
        verdict = "(saved reference)" if c is None else (
            f"{'REGRESSION' if c['regression'] else 'pass'}: {c['change_pct']:+.1f} % "
            f"[{c['ci_pct'][0]:+.1f}, {c['ci_pct'][1]:+.1f}], p = {c['p_value']:.2g}" if c["p_value"] is not None
            else c["message"])
        cv = f"{run['cycle_cv']:.1%}" if run["cycle_cv"] is not None else "-"
        mean = f"{run['mean']:.4g}" if run["mean"] is not None else "-"
        print(f"{name:<11} {run['attention']:<6} {run['batch']:>5} {len(run['values']):>6} {mean:>13} {cv:>8} "
              f"{run['gpu_seconds']:>6}  {verdict}")
    print(f"total {result['total_seconds']} s; errors: {list(result['errors']) or 'none'}")


def _write(result: dict[str, Any], out: Path | None) -> None:
    if out is None:
        return
    path = out / "gate.json" if out.suffix != ".json" else out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
