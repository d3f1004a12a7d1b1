#!/usr/bin/env python3
"""Validate the edge-corrected energy and the uncertainty budget on a real GPU (one H200); < 4 min.

    python3 scripts/validate_h200_edges.py --out $OUT            # writes $OUT/h200_edges.json
    python3 scripts/validate_h200_edges.py --source replay --quick  # CPU dry run (stepped replay counter)

Parts (an error is recorded in the JSON, the next part still runs):
  counter   the energy counter itself: reads back to back for 2 s; update period, jitter, read cost
  flat      the GPU held at its power cap by a bf16 matmul loop on a side CUDA stream (own thread);
            many windows of 0.5, 1, 2, 4 and 10 s with a random start phase through the real
            EnergyMeter (NVML, driver buffer). Per length: raw-counter error vs the 50 Hz series,
            corrected error vs the series (median, max |.|), the same after removing the series'
            own bias (median over the 10 s windows), and the uncertainty the plugin reported
  generate  HF generate windows of a small random-weight Llama (bf16, batch 8, 64 new tokens,
            cuda sync at the edges) with a 5 s P0 baseline: the same errors, the adjusted
            uncertainty and its parts, host_bound and mean utilisation
Needs torch, transformers, nvidia-ml-py, numpy; never pydantic.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from pytest_llenergy.energy import (  # noqa: E402
    EnergyMeter,
    ReplaySource,
    describe,
    measure_baseline,
    resolve_source,
)

LENGTHS = {0.5: 16, 1.0: 16, 2.0: 10, 4.0: 6, 10.0: 4}  # window seconds -> windows (~130 s in all)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Validate edge-corrected energy on a GPU.")
    ap.add_argument("--source", default="nvml", help="nvml (default) or replay (CPU dry run)")
    ap.add_argument("--out", type=Path, default=None, help="a folder (writes h200_edges.json) or a .json path")
    ap.add_argument("--quick", action="store_true", help="few short windows (dry runs)")
    ap.add_argument("--budget-s", type=float, default=200.0, help="stop starting windows after this long")
    return ap.parse_args()


def out_path(out: Path | None) -> Path | None:
    if out is None:
        return None
    if out.suffix == ".json":
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    return out / "h200_edges.json"


class Gpu:
    """torch on CUDA: a power-cap matmul loop on a side stream, and a small random-weight generate."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.cuda = torch.cuda.is_available()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.model = None

    @property
    def sync(self):
        return self.torch.cuda.synchronize if self.cuda else None

    def prime(self) -> None:
        if self.cuda:
            a = self.torch.ones((1024, 1024), device="cuda")
            (a @ a).sum().item()

    def start_load(self) -> None:
        """bf16 8192^2 matmuls on a side stream from a side thread until :meth:`stop_load`."""
        if not self.cuda:
            return
        torch = self.torch

        def loop() -> None:
            stream = torch.cuda.Stream()
            a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
            b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
            with torch.cuda.stream(stream):
                while not self._stop.is_set():
                    for _ in range(8):
                        a @ b
                    stream.synchronize()  # bound the queue so stop is prompt

        self._stop.clear()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop_load(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def build_model(self, batch: int = 8, prompt: int = 128) -> None:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch = self.torch
        cfg = LlamaConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=12, num_attention_heads=16,
                          num_key_value_heads=4, vocab_size=32000)
        with torch.device("cuda"):
            model = LlamaForCausalLM(cfg)
        self.model = model.to(torch.bfloat16).eval()
        self.model.generation_config.eos_token_id = None
        self.model.generation_config.pad_token_id = 0
        self.ids = torch.randint(1, cfg.vocab_size, (batch, prompt), device="cuda")

    def generate(self, new_tokens: int = 64) -> int:
        with self.torch.inference_mode():
            out = self.model.generate(self.ids, attention_mask=self.torch.ones_like(self.ids),
                                      max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        return int((out.shape[1] - self.ids.shape[1]) * out.shape[0])


def part_counter(source: Any, seconds: float = 2.0) -> dict[str, Any]:
    """Back-to-back counter reads: the instants the value changed (bracketed), the period, read cost."""
    reads = []
    end = source.clock() + seconds
    while source.clock() < end:
        a = source.clock()
        v = float(source.read_counters()[0])
        reads.append((a, source.clock(), v))
    steps = [0.5 * (reads[i - 1][0] + reads[i][1]) for i in range(1, len(reads)) if reads[i][2] != reads[i - 1][2]]
    gaps = np.diff(steps) if len(steps) > 1 else np.array([])
    cost = [b - a for a, b, _ in reads]
    return {"reads": len(reads), "read_ms_median": 1e3 * statistics.median(cost), "updates": len(steps),
            "period_ms_mean": 1e3 * float(gaps.mean()) if gaps.size else None,
            "period_ms_sd": 1e3 * float(gaps.std(ddof=1)) if gaps.size > 1 else None,
            "period_ms_min": 1e3 * float(gaps.min()) if gaps.size else None,
            "period_ms_max": 1e3 * float(gaps.max()) if gaps.size else None}


def window_row(m: Any) -> dict[str, Any]:
    s, e, raw = m.integral_energy_j, m.energy_j, m.counter_energy_j
    return {"duration_s": m.duration_s, "energy_j": e, "counter_energy_j": raw, "integral_energy_j": s,
            "raw_vs_series_pct": (raw - s) / s * 100 if s and raw is not None else None,
            "corrected_vs_series_pct": (e - s) / s * 100 if s and e is not None else None,
            "edge_method": m.edge_method, "counter_period_s": m.counter_period_s,
            "uncertainty_j": m.uncertainty_j, "uncertainty_pct": 100 * m.uncertainty_j / e if e and m.uncertainty_j is not None else None,
            "adjusted_energy_j": m.adjusted_energy_j, "adjusted_uncertainty_j": m.adjusted_uncertainty_j,
            "uncertainty_parts_j": dict(m.uncertainty_parts_j), "uncertain": m.uncertain,
            "host_bound": m.host_bound, "mean_utilization_pct": m.mean_utilization_pct, "flags": list(m.flags)}


def summarise(rows: list[dict[str, Any]], bias_pct: float | None) -> dict[str, Any]:
    def col(name: str) -> np.ndarray:
        return np.array([r[name] for r in rows if r[name] is not None], dtype=float)

    raw, cor, unc = col("raw_vs_series_pct"), col("corrected_vs_series_pct"), col("uncertainty_pct")
    out = {"n": len(rows), "corrected": sum(r["edge_method"] == "counter+series" for r in rows)}
    for name, x in (("raw", raw), ("corrected", cor)):
        if x.size:
            out[f"{name}_median_pct"], out[f"{name}_max_abs_pct"] = float(np.median(x)), float(np.abs(x).max())
            out[f"{name}_min_pct"], out[f"{name}_max_pct"] = float(x.min()), float(x.max())
    if cor.size and bias_pct is not None:
        out["corrected_unbiased_max_abs_pct"] = float(np.abs(cor - bias_pct).max())
    if unc.size:
        out["uncertainty_median_pct"], out["uncertainty_max_pct"] = float(np.median(unc)), float(unc.max())
    return out


def part_flat(source: Any, gpu: Gpu | None, args: argparse.Namespace, t_start: float) -> dict[str, Any]:
    if gpu is not None:
        gpu.start_load()
        time.sleep(3.0)  # reach the power cap
    lengths = {0.5: 3, 1.0: 3, 2.0: 2, 10.0: 1} if args.quick else LENGTHS
    meter = EnergyMeter(source, sample_hz=10, use_driver_buffer=True)
    rows: dict[float, list[dict[str, Any]]] = {d: [] for d in lengths}
    plan = [d for d, n in lengths.items() for _ in range(n)]
    random.Random(0).shuffle(plan)
    try:
        for dur in plan:
            if time.perf_counter() - t_start > args.budget_s * 0.7:
                break
            time.sleep(random.random() * 0.1)  # random phase against the 100 ms counter
            with meter.measure(f"flat{dur}") as win:
                time.sleep(dur + random.random() * 0.1)  # lengths off whole counter periods
            rows[dur].append(window_row(win.result))
    finally:
        if gpu is not None:
            gpu.stop_load()
    long = [r["integral_energy_j"] / r["energy_j"] - 1 for r in rows.get(10.0, []) if r["energy_j"]]
    bias = 100 * float(np.median(long)) if long else None
    return {"series_bias_pct": bias, "by_length": {str(d): summarise(r, bias) for d, r in rows.items() if r},
            "windows": {str(d): r for d, r in rows.items()}}


def part_generate(source: Any, gpu: Gpu | None, args: argparse.Namespace) -> dict[str, Any]:
    if gpu is not None:
        gpu.prime()
        time.sleep(2.0)
    baseline = measure_baseline(source, 2.0 if args.quick else 5.0, 10.0)
    run = None
    if gpu is not None and gpu.cuda:
        gpu.build_model()
        gpu.generate(8)  # warm
        run = gpu.generate
    meter = EnergyMeter(source, sample_hz=10, baseline=baseline, cuda_sync=gpu.sync if gpu else None)
    rows = []
    for _ in range(3 if args.quick else 8):
        time.sleep(random.random() * 0.1 + 0.5)
        with meter.measure("generate") as win:
            tokens = run() if run is not None else (time.sleep(1.0) or 0)
            win.record(output_tokens=tokens)
        rows.append(window_row(win.result))
    return {"baseline_w": baseline.power_w, "baseline_sd_w": baseline.sd_w, "summary": summarise(rows, None),
            "windows": rows}


def table(result: dict[str, Any]) -> str:
    lines = ["window  n  corr  raw vs series % (median, min..max)  corrected vs series % (median, max|.|)  unbiased max|.|  reported u % (median)"]
    for d, s in (result.get("flat") or {}).get("by_length", {}).items():
        lines.append(f"{float(d):>5.1f}s {s['n']:>2} {s['corrected']:>4}  {s.get('raw_median_pct', float('nan')):+6.2f} "
                     f"({s.get('raw_min_pct', float('nan')):+.2f}..{s.get('raw_max_pct', float('nan')):+.2f})      "
                     f"{s.get('corrected_median_pct', float('nan')):+6.3f}, {s.get('corrected_max_abs_pct', float('nan')):.3f}"
                     f"                     {s.get('corrected_unbiased_max_abs_pct', float('nan')):.3f}"
                     f"           {s.get('uncertainty_median_pct', float('nan')):.3f}")
    gen = (result.get("generate") or {}).get("summary")
    if gen:
        lines.append(f"generate n={gen['n']} corrected={gen['corrected']}: raw vs series max|.| "
                     f"{gen.get('raw_max_abs_pct', float('nan')):.2f} %, corrected {gen.get('corrected_max_abs_pct', float('nan')):.3f} %, "
                     f"reported u median {gen.get('uncertainty_median_pct', float('nan')):.3f} %")
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    t_start = time.perf_counter()
    if args.source == "replay":
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            flat = Path(tmp) / "flat692.csv"
            t = np.arange(0.0, 60.0, 0.02)
            flat.write_text("t_s,power_w\n" + "".join(f"{x:.3f},692.0\n" for x in t))
            source, reason = ReplaySource(flat, counter_period_s=0.1, counter_phase_s=0.037), "replay (stepped counter)"
    else:
        source, reason = resolve_source("nvml")
        if len(source.devices()) > 1:
            first = source.devices()[0].index
            source.close()
            source, reason = resolve_source("nvml", devices=[first])
    result: dict[str, Any] = {"source": reason, "describe": describe(source), "errors": {}}
    gpu = None
    if args.source != "replay":
        try:
            gpu = Gpu()
        except Exception:
            result["errors"]["torch"] = traceback.format_exc()
    path = out_path(args.out)
    for name, fn in (("counter", lambda: part_counter(source)), ("flat", lambda: part_flat(source, gpu, args, t_start)),
                     ("generate", lambda: part_generate(source, gpu, args))):
        t = time.perf_counter()
        try:
            result[name] = fn()
        except Exception:
            result["errors"][name] = traceback.format_exc()
        result.setdefault("part_seconds", {})[name] = round(time.perf_counter() - t, 1)
        if path is not None:
            path.write_text(json.dumps(result, indent=1, default=str))
    result["total_seconds"] = round(time.perf_counter() - t_start, 1)
    result["table"] = table(result)
    if path is not None:
        path.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps({k: v for k, v in result.items() if k not in ("flat", "generate")}, indent=1, default=str))
    print(json.dumps({"flat_by_length": (result.get("flat") or {}).get("by_length"),
                      "series_bias_pct": (result.get("flat") or {}).get("series_bias_pct"),
                      "generate": (result.get("generate") or {}).get("summary")}, indent=1, default=str))
    print(result["table"])
    source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
