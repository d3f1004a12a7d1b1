"""Validate the transformers backend's generate path on a GPU: throughput and counter energy.

Three random-weight architectures (gpt2, llama-3.2-1b, qwen2.5-0.5b) in bfloat16 at batch 1, 8
and 32, 128 input and 64 output tokens (exactly: min = max new tokens). For each point: output
tokens/s over a window of repeated generate calls, peak memory and, when pynvml is importable,
energy from the NVML total-energy counter read at the window edges (J per output token).

Needs python3, torch, transformers and numpy; no pydantic: it uses the backend's pydantic-free
helpers (architectures, transformers_loading, transformers_generate, workload) from this checkout.

Usage:
    python3 scripts/validate_h200_backend.py --out h200_backend.json      # GPU, about 2 minutes
    python3 scripts/validate_h200_backend.py --quick --out /tmp/dry.json  # CPU dry run, tiny configs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FULL = {"models": ["gpt2", "llama-3.2-1b", "qwen2.5-0.5b"], "batch_sizes": [1, 8, 32], "input_tokens": 128,
        "output_tokens": 64, "dtype": "bfloat16", "min_window_s": 3.0, "min_reps": 3, "warmup": 2}
QUICK = {"models": ["tiny-gpt2", "tiny-llama"], "batch_sizes": [1, 4], "input_tokens": 16, "output_tokens": 8,
         "dtype": "float32", "min_window_s": 0.2, "min_reps": 2, "warmup": 1}


class EnergyCounter:
    """NVML total-energy counter (mJ) of the GPU torch uses as cuda:0; None when unavailable."""

    def __init__(self, enabled: bool = True) -> None:
        self.handle = None
        self.name = None
        if not enabled:
            return
        try:
            import pynvml
            import torch

            if not torch.cuda.is_available():
                return
            pynvml.nvmlInit()
            self.nvml = pynvml
            handle = None
            uuid = getattr(torch.cuda.get_device_properties(0), "uuid", None)
            if uuid is not None:
                try:
                    handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
                except pynvml.NVMLError:
                    handle = None
            if handle is None:
                visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
                handle = pynvml.nvmlDeviceGetHandleByIndex(int(visible) if visible.isdigit() else 0)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # supported?
            self.handle = handle
            name = pynvml.nvmlDeviceGetName(handle)
            self.name = name.decode() if isinstance(name, bytes) else name
        except Exception as exc:  # noqa: BLE001 - energy is optional here
            print(f"(no NVML energy counter: {type(exc).__name__}: {exc})", file=sys.stderr)

    def read_j(self) -> float | None:
        if self.handle is None:
            return None
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0


def measure(name: str, settings: dict[str, Any], device: str, counter: EnergyCounter, seed: int = 0) -> list[dict[str, Any]]:
    import torch
    from transformers import GenerationConfig

    from pytest_llenergy.backends.transformers.generate import new_token_counts, tensorise
    from pytest_llenergy.backends.transformers.loading import build_random_model
    from pytest_llenergy.backends.workload import synthetic_prompts

    started = time.perf_counter()
    model = build_random_model(name, dtype=settings["dtype"], device=device, seed=seed)
    build_s = time.perf_counter() - started
    config = model.config
    eos = config.eos_token_id if isinstance(config.eos_token_id, int) else 0
    pad = config.pad_token_id if config.pad_token_id is not None else eos
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad, bos_token_id=config.bos_token_id)
    params = sum(p.numel() for p in model.parameters())
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    n_out = settings["output_tokens"]
    kwargs = {"max_new_tokens": n_out, "min_new_tokens": n_out, "do_sample": False, "num_beams": 1,
              "pad_token_id": pad, "eos_token_id": eos, "use_cache": True, "disable_compile": True}
    rows = []
    for batch in settings["batch_sizes"]:
        specials = [i for i in (eos, pad, config.bos_token_id) if i is not None]
        prompts = synthetic_prompts(batch, settings["input_tokens"], config.vocab_size, specials, seed)
        (ids, mask), = tensorise([prompts], pad, model.device)
        for _ in range(settings["warmup"]):
            model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        sync()
        energy_start = counter.read_j()
        start = time.perf_counter()
        reps, counts = 0, []
        while reps < settings["min_reps"] or time.perf_counter() - start < settings["min_window_s"]:
            out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            reps += 1
            counts.append(out)
        sync()
        elapsed = time.perf_counter() - start
        energy_end = counter.read_j()
        generated = sum(sum(new_token_counts(o, ids.shape[1], [eos])) for o in counts)
        expected = reps * batch * n_out
        energy = None if energy_start is None or energy_end is None else energy_end - energy_start
        rows.append({
            "model": name,
            "parameters": params,
            "dtype": settings["dtype"],
            "batch_size": batch,
            "input_tokens": settings["input_tokens"],
            "output_tokens_per_prompt": n_out,
            "repetitions": reps,
            "window_s": elapsed,
            "output_tokens": generated,
            "exact_counts": generated == expected,
            "tokens_per_s": generated / elapsed,
            "ms_per_decode_step": 1e3 * elapsed / (reps * n_out),
            "energy_j": energy,
            "j_per_output_token": None if energy is None else energy / generated,
            "mean_power_w": None if energy is None else energy / elapsed,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None,
            "model_build_s": build_s,
        })
        print(f"  {name} bs={batch}: {rows[-1]['tokens_per_s']:.0f} tok/s over {elapsed:.2f} s ({reps} reps)", file=sys.stderr)
        del counts, out
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    def fmt(value: Any, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    lines = ["| model | params (M) | batch | tokens/s | ms/step | J/token | mean W | peak GiB | exact |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['parameters'] / 1e6:.1f} | {r['batch_size']} | {r['tokens_per_s']:.1f} | "
            f"{r['ms_per_decode_step']:.2f} | {fmt(r['j_per_output_token'], '.4f')} | {fmt(r['mean_power_w'], '.0f')} | "
            f"{fmt(r['peak_memory_gib'], '.2f')} | {'yes' if r['exact_counts'] else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("validate_h200_backend.json"), help="JSON results file")
    parser.add_argument("--quick", action="store_true", help="CPU dry run with tiny configs (seconds)")
    parser.add_argument("--models", nargs="+", help="override the architectures (shipped names)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, help="override the batch sizes")
    parser.add_argument("--device", help="default: cuda:0 when available (cpu with --quick)")
    args = parser.parse_args(argv)

    import torch
    import transformers

    settings = dict(QUICK if args.quick else FULL)
    if args.models:
        settings["models"] = args.models
    if args.batch_sizes:
        settings["batch_sizes"] = args.batch_sizes
    device = args.device or ("cpu" if args.quick or not torch.cuda.is_available() else "cuda:0")
    if not args.quick and not device.startswith("cuda"):
        print("no CUDA device: use --quick for a CPU dry run", file=sys.stderr)
        return 2
    counter = EnergyCounter(enabled=device.startswith("cuda"))
    started = time.perf_counter()
    rows = []
    for name in settings["models"]:
        rows.extend(measure(name, settings, device, counter))
    report = {
        "script": "scripts/validate_h200_backend.py",
        "quick": args.quick,
        "settings": settings,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device": device,
            "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
            "nvml_device": counter.name,
            "energy_source": "nvmlDeviceGetTotalEnergyConsumption" if counter.handle is not None else None,
        },
        "total_s": time.perf_counter() - started,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(rows))
    print(f"\nwrote {args.out} ({report['total_s']:.0f} s)")
    return 0 if all(r["exact_counts"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
