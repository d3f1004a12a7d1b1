#!/usr/bin/env python3
"""Why the first full-length batch on the dynamic KV cache is slow, and whose cost it is (~4 min).

On an H200 the warmup's first batch at full length (128 new tokens, eager ``generate`` with the
dynamic cache) took 6.7-10.6 s against 1.7-2.6 s later (walltime-h200/host_bound-tracked), even for
llama bs8 right after llama bs32 in the same process; with a static cache the first run was already
at its steady speed (compile-h200). That is ~24 s of the host-bound campaign's 281 s: without it,
71 % of the wall would have been measured instead of 65 %. Suspects: the CUDA caching allocator
(each decode step concatenates every layer's K and V into tensors one token longer, sizes the pool
has never held) or a per-shape cost (kernel selection for each new KV length and batch size).

Variants, each in a fresh process (an allocator setting must precede CUDA's start), llama-3.2-1b
(random weights, bf16) at batch 32 then batch 8 as the campaign runs them, each: the probe (4 new
tokens), the first full-length run, then 3 more; per run the wall time, the driver allocations it
caused (``num_device_alloc``), the pool's reserved bytes and the NVML counter's energy:

  default     the shipped setup
  expandable  ``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True``
  reserved    the default allocator with 4 GiB allocated and freed before the first probe (the pool
              holds one segment the growing tensors can be cut from: no driver allocation per step)
  no_cudnn    the default allocator, scaled_dot_product_attention without its cuDNN backend
              (``torch.backends.cuda.enable_cudnn_sdp(False)``): recent torch builds put cuDNN first on
              sm90 with a recent cuDNN, and cuDNN builds and caches an execution graph per batch size
              and key length, so eager decoding with a growing cache builds one per step the first time
  profile     default, batch 32, ``torch.profiler`` over the first run and a later one: the top
              operations by self CPU time, so the cost is named whichever it is

If the allocator is the cause, expandable/reserved shrink the first run and leave the steady runs'
time and energy unchanged; if cuDNN's per-shape graphs are, no_cudnn does (its steady runs then show
what the other attention kernel costs); the profile names the operation either way.

    python3 scripts/validate_h200_first_batch.py --out $OUT           # GPU
    python3 scripts/validate_h200_first_batch.py --quick --out /tmp/fb  # CPU dry run (no allocator)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"default": None, "expandable": "expandable_segments:True", "reserved": None, "no_cudnn": None,
            "profile": None}
RESERVE_GIB = 4
STEADY_RUNS = 3


def _counter() -> Any:
    """A callable returning the NVML energy counter of GPU 0 in J (None: unavailable)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0
    except Exception:  # noqa: BLE001 - CPU dry run
        return lambda: None


def _profiled(call: Any, gpu: bool) -> list[dict[str, Any]]:
    """``call`` under torch.profiler: the 12 operations with the most self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as prof:
        call()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
    return [{"name": e.key, "calls": e.count, "self_cpu_ms": e.self_cpu_time_total / 1000.0,
             "device_ms": getattr(e, "self_device_time_total", 0.0) / 1000.0} for e in events]


def child(variant: str, quick: bool) -> dict[str, Any]:
    """One process: for each batch size, the probe, the first full run and the steady runs."""
    sys.path.insert(0, str(ROOT))
    import torch

    from pytest_llenergy.backends.transformers.backend import TransformersSession
    from pytest_llenergy.config.experiment import ExperimentConfig

    gpu = torch.cuda.is_available() and not quick
    if variant == "no_cudnn":
        torch.backends.cuda.enable_cudnn_sdp(False)
    if variant == "reserved" and gpu:
        block = torch.empty(RESERVE_GIB * 2**30, dtype=torch.uint8, device="cuda")
        del block  # the segment stays in the caching allocator's pool
    energy, rows, profiles, session = _counter(), [], {}, None

    def timed(batch_size: int, name: str, call: Any) -> None:
        stats = torch.cuda.memory_stats() if gpu else {}
        e0, t0 = energy(), time.perf_counter()
        call()
        if gpu:
            torch.cuda.synchronize()
        wall, e1 = time.perf_counter() - t0, energy()
        after = torch.cuda.memory_stats() if gpu else {}
        rows.append({"batch_size": batch_size, "run": name, "wall_s": wall, "energy_j": None if e0 is None else e1 - e0,
                     "device_allocs": after.get("num_device_alloc", 0) - stats.get("num_device_alloc", 0),
                     "reserved_gib": after.get("reserved_bytes.all.current", 0) / 2**30})

    sizes = (32,) if variant == "profile" else (32, 8)
    try:
        for batch_size in (2,) if quick else sizes:
            exp = ExperimentConfig.model_validate({
                "model": {"name": "llama-3.2-1b" if gpu else "tiny-llama", "weights": "random"},
                "precision": "bfloat16" if gpu else "float32",
                "workload": {"batch_size": batch_size, "num_prompts": batch_size,
                             "input_tokens": 128 if gpu else 16, "output_tokens": 128 if gpu else 8}})
            session = session or TransformersSession(exp)  # one resident model, as in the campaign
            workload = session.prepare(exp.workload)
            timed(batch_size, "probe", partial(session.probe, workload, 4))
            if variant == "profile":
                profiles["first"] = _profiled(partial(session.run, workload), gpu)
                timed(batch_size, "run1", partial(session.run, workload))
                profiles["steady"] = _profiled(partial(session.run, workload), gpu)
                continue
            for i in range(STEADY_RUNS + 1):
                timed(batch_size, "first" if i == 0 else f"run{i}", partial(session.run, workload))
    finally:
        if session is not None:
            session.close()
    return {"rows": rows, "profiles": profiles}


def summary(variant: str, result: dict[str, Any]) -> list[str]:
    """One line per batch size (the profile variant: its top operations, first run vs steady)."""
    if result["profiles"]:
        lines = [f"{variant}: top self-CPU operations, first run | steady run (ms, calls)"]
        steady = {e["name"]: e for e in result["profiles"]["steady"]}
        for e in result["profiles"]["first"]:
            s = steady.get(e["name"], {"self_cpu_ms": 0.0, "calls": 0})
            lines.append(f"  {e['name'][:48]:48} {e['self_cpu_ms']:9.1f} ms {e['calls']:>6} | "
                         f"{s['self_cpu_ms']:9.1f} ms {s['calls']:>6}")
        return lines
    lines = []
    for bs in dict.fromkeys(r["batch_size"] for r in result["rows"]):
        rows = {r["run"]: r for r in result["rows"] if r["batch_size"] == bs}
        steady = [r for name, r in rows.items() if name.startswith("run")]
        wall = statistics.fmean(r["wall_s"] for r in steady)
        joules = [r["energy_j"] for r in steady if r["energy_j"] is not None]
        j = f", {statistics.fmean(joules):.1f} J/run" if joules else ""
        lines.append(f"{variant:10} bs {bs:>2}: probe {rows['probe']['wall_s']:5.2f} s, first run "
                     f"{rows['first']['wall_s']:5.2f} s ({rows['first']['device_allocs']} driver allocs, "
                     f"{rows['first']['reserved_gib']:.2f} GiB reserved), steady {wall:5.3f} s "
                     f"(CV {100 * statistics.stdev(r['wall_s'] for r in steady) / wall:.1f} %, "
                     f"{sum(r['device_allocs'] for r in steady)} allocs{j})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="CPU dry run on a tiny model")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.quick)))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    results, lines = [], []
    for variant in args.variants.split(","):
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        env.pop("PYTORCH_CUDA_ALLOC_CONF", None)
        if VARIANTS[variant]:
            env["PYTORCH_CUDA_ALLOC_CONF"] = VARIANTS[variant]
        cmd = [sys.executable, __file__, "--out", str(args.out), "--child", variant] + (["--quick"] if args.quick else [])
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            new = [f"{variant}: FAILED rc {done.returncode}: {done.stderr[-600:]}"]
        else:
            result = {"variant": variant, **json.loads(done.stdout.strip().splitlines()[-1])}
            results.append(result)
            new = summary(variant, result)
        lines += new
        print("\n".join(new), flush=True)
        (args.out / "first_batch.json").write_text(json.dumps({"results": results, "lines": lines}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
