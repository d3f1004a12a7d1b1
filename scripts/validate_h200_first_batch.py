#!/usr/bin/env python3
"""Why the first full-length batch on the dynamic KV cache is slow, and whose cost it is (< 2 min).

On an H200 the warmup's first batch at full length (128 new tokens, eager ``generate`` with the
dynamic cache) took 6-11 s against ~1.4 s later; with a static cache the first run was already at
its steady speed (docs/validation/data/compile-h200). The suspect is the CUDA caching allocator:
each decode step concatenates every layer's K and V into tensors one token longer, sizes the pool
has never held, so each step asks the driver for new memory until the pool has grown.

For each allocator setting (the default, ``expandable_segments:True``), in a fresh process (the
setting must precede CUDA's start), on llama-3.2-1b (random weights, bf16) at batch 8 and 32:
the probe (4 new tokens), the first full-length run, then 4 more; per run the wall time, the
driver allocations it caused (``num_device_alloc``), the pool's reserved bytes and, on NVML, the
counter's energy. If the allocator is the cause, expandable segments shrink the first run and
leave the steady runs' time and energy unchanged.

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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"default": None, "expandable": "expandable_segments:True"}


def _counter() -> Any:
    """A callable returning the NVML energy counter of GPU 0 in J (None: unavailable)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0
    except Exception:  # noqa: BLE001 - CPU dry run
        return lambda: None


def child(batch_size: int, quick: bool) -> dict[str, Any]:
    """One process: probe, first full run and four more, with allocator figures per run."""
    sys.path.insert(0, str(ROOT))
    import torch

    from pytest_llenergy.backends.transformers.backend import TransformersSession
    from pytest_llenergy.config.experiment import ExperimentConfig

    gpu = torch.cuda.is_available() and not quick
    exp = ExperimentConfig.model_validate({
        "model": {"name": "llama-3.2-1b" if gpu else "tiny-llama", "weights": "random"},
        "precision": "bfloat16" if gpu else "float32",
        "workload": {"batch_size": batch_size, "num_prompts": batch_size, "input_tokens": 128 if gpu else 16,
                     "output_tokens": 128 if gpu else 8}})
    energy = _counter()
    session = TransformersSession(exp)
    rows: list[dict[str, Any]] = []
    try:
        workload = session.prepare(exp.workload)

        def timed(name: str, call: Any) -> None:
            stats = torch.cuda.memory_stats() if gpu else {}
            e0, t0 = energy(), time.perf_counter()
            call()
            if gpu:
                torch.cuda.synchronize()
            wall, e1 = time.perf_counter() - t0, energy()
            after = torch.cuda.memory_stats() if gpu else {}
            rows.append({"run": name, "wall_s": wall, "energy_j": None if e0 is None else e1 - e0,
                         "device_allocs": after.get("num_device_alloc", 0) - stats.get("num_device_alloc", 0),
                         "reserved_gib": after.get("reserved_bytes.all.current", 0) / 2**30})

        timed("probe", lambda: session.probe(workload, 4))
        for i in range(5):
            timed("first" if i == 0 else f"run{i}", lambda: session.run(workload))
    finally:
        session.close()
    return {"batch_size": batch_size, "rows": rows}


def summary(setting: str, result: dict[str, Any]) -> str:
    rows = {r["run"]: r for r in result["rows"]}
    steady = [r for r in result["rows"] if r["run"].startswith("run")]
    wall = statistics.fmean(r["wall_s"] for r in steady)
    joules = [r["energy_j"] for r in steady if r["energy_j"] is not None]
    j = f", steady {statistics.fmean(joules):.1f} J/run" if joules else ""
    return (f"{setting:10} bs {result['batch_size']:>2}: probe {rows['probe']['wall_s']:5.2f} s, first run "
            f"{rows['first']['wall_s']:5.2f} s ({rows['first']['device_allocs']} driver allocs, "
            f"{rows['first']['reserved_gib']:.2f} GiB reserved), steady {wall:5.3f} s "
            f"(CV {100 * statistics.stdev(r['wall_s'] for r in steady) / wall:.1f} %, "
            f"{sum(r['device_allocs'] for r in steady)} allocs){j}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="CPU dry run on a tiny model")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.quick)))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    results, lines = [], []
    for bs in ((2,) if args.quick else (32, 8)):
        for setting, conf in SETTINGS.items():
            env = {**os.environ, "HF_HUB_OFFLINE": "1"}
            env.pop("PYTORCH_CUDA_ALLOC_CONF", None)
            if conf:
                env["PYTORCH_CUDA_ALLOC_CONF"] = conf
            cmd = [sys.executable, __file__, "--out", str(args.out), "--child", str(bs)] + (["--quick"] if args.quick else [])
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                lines.append(f"{setting} bs {bs}: FAILED rc {done.returncode}: {done.stderr[-600:]}")
            else:
                result = {"setting": setting, **json.loads(done.stdout.strip().splitlines()[-1])}
                results.append(result)
                lines.append(summary(setting, result))
            print(lines[-1], flush=True)
    (args.out / "first_batch.json").write_text(json.dumps({"results": results, "lines": lines}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
