"""Validate the prefill/decode split on a GPU against a prefill-only reference measured by the counter.

For batch 1, 8 and 32 on a random-weight llama-3.2-1b in bfloat16 (128 input tokens):
- reference: a prefill-only loop (``max_new_tokens = 1``) run for >= 10 s, its energy read from
  the NVML counter at the window edges: J per prefill = window joules / generate calls;
- split: the full workload (16 output tokens, 8 batches) measured ``--runs`` times at random
  offsets to the driver's sample grid; each run split at the transformers logits-processor stamps;
  phase-resolved averaging over all runs gives J per prefill (= prefill energy per run / batches).
The split must agree with the reference within 5 % at every batch size. Both are raw (not
baseline-adjusted) joules. The split is also shown for several sample lags (``sample_lag_s``).

Usage (H200):  python3 scripts/validate_h200_phases.py --out $OUT     # about 2-3 minutes
CPU dry run:   python3 scripts/validate_h200_phases.py --quick --out /tmp/phases.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FULL = {"model": "llama-3.2-1b", "precision": "bfloat16", "batch_sizes": [1, 8, 32], "input_tokens": 128,
        "output_tokens": 16, "batches": 8, "runs": 12, "reference_s": 10.0, "source": "nvml"}
QUICK = {"model": "tiny-llama", "precision": "float32", "batch_sizes": [1, 4], "input_tokens": 16,
         "output_tokens": 4, "batches": 2, "runs": 3, "reference_s": 0.5, "source": "auto"}
LAGS = (0.0, 0.01, 0.02, 0.05)
TOLERANCE = 0.05


def load_session(cfg: dict[str, Any]) -> Any:
    """One loaded model for every batch size (only the workload changes)."""
    from pytest_llenergy.backends.transformers.backend import TransformersBackend
    from pytest_llenergy.config.experiment import ExperimentConfig

    exp = ExperimentConfig.model_validate({
        "backend": "transformers", "model": {"name": cfg["model"], "weights": "random"},
        "precision": cfg["precision"], "decoder": {"temperature": 0.0}})
    return TransformersBackend().load(exp)


def workload_for(session: Any, cfg: dict[str, Any], batch: int, output_tokens: int) -> Any:
    from pytest_llenergy.config.experiment import WorkloadConfig

    return session.prepare(WorkloadConfig(num_prompts=batch * cfg["batches"], batch_size=batch,
                                          input_tokens=cfg["input_tokens"], output_tokens=output_tokens))


def reference(meter: Any, session: Any, workload: Any, seconds: float) -> dict[str, Any]:
    """J per prefill from a prefill-only loop measured by the counter."""
    first = workload.head(1)
    for _ in range(3):
        session.run(first)
    calls = 0
    with meter.measure("reference") as w:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            session.run(first)
            calls += 1
    m = w.result
    return {"calls": calls, "window_s": m.duration_s, "energy_j": m.energy_j, "counter_j": m.counter_energy_j,
            "j_per_prefill": m.energy_j / calls, "flags": list(m.flags)}


def split_runs(meter: Any, session: Any, workload: Any, runs: int, lag: float) -> list[Any]:

    out = []
    for i in range(runs):
        time.sleep(random.uniform(0.0, 0.02))  # a random phase against the 50 Hz sample grid
        with meter.measure(f"run{i}") as w:
            stats = session.run(workload)
            w.record(stats.input_tokens, stats.output_tokens, timeline=stats.timeline)
        out.append((meter.series(w.name), w.result, w.timeline, w.host_edges))
    return out


def figures(recorded: list[Any], lag: float, batches: int) -> dict[str, Any]:
    from pytest_llenergy.energy.phase_average import averaged_phase
    from pytest_llenergy.energy.phases import split_window

    splits = [split_window(s, m, tl, e, lag_s=lag) for s, m, tl, e in recorded]
    splits = [s for s in splits if s is not None]
    pre = averaged_phase(splits, "prefill", splits[0].phases["prefill"].tokens, None, None)
    direct = [s.phases["prefill"].energy_j for s in splits]
    return {"lag_s": lag, "j_per_prefill": pre.energy_j / batches if pre else None,
            "u_j_per_prefill": pre.uncertainty_j / batches if pre else None,
            "direct_j_per_prefill": sum(direct) / len(direct) / batches,
            "prefill_s_per_batch": pre.duration_s / batches if pre else None,
            "method": pre.method if pre else None,
            "decode_j_per_run": sum(s.phases["decode"].energy_j for s in splits) / len(splits),
            "flags": sorted({f for s in splits for f in s.phases["prefill"].flags})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder (or .json file) for the results")
    parser.add_argument("--quick", action="store_true", help="tiny CPU dry run")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.runs:
        cfg["runs"] = args.runs
    from pytest_llenergy.energy import EnergyMeter, resolve_source

    source, reason = resolve_source(cfg["source"])
    sync = None
    try:
        import torch

        if torch.cuda.is_available():
            sync = torch.cuda.synchronize
    except ImportError:
        pass
    meter = EnergyMeter(source, 50.0, None, sync)
    rows = []
    session = load_session(cfg)
    for batch in cfg["batch_sizes"]:
        ref = reference(meter, session, workload_for(session, cfg, batch, 1), cfg["reference_s"])
        work = workload_for(session, cfg, batch, cfg["output_tokens"])
        for _ in range(2):
            session.run(work.head(1))
        recorded = split_runs(meter, session, work, cfg["runs"], 0.0)
        meter.clear()
        by_lag = [figures(recorded, lag, cfg["batches"]) for lag in LAGS]
        for f in by_lag:
            f["error_pct"] = (f["j_per_prefill"] / ref["j_per_prefill"] - 1) * 100 if f["j_per_prefill"] else None
        rows.append({"batch": batch, "reference": ref, "split": by_lag,
                     "agrees_within_5pct_lag0": by_lag[0]["error_pct"] is not None and abs(by_lag[0]["error_pct"]) <= 100 * TOLERANCE})
        print(f"batch {batch}: reference {ref['j_per_prefill']:.4f} J/prefill ({ref['calls']} calls, {ref['window_s']:.1f} s)", flush=True)
        for f in by_lag:
            print(f"   lag {f['lag_s'] * 1000:4.0f} ms: split {f['j_per_prefill'] or float('nan'):.4f} "
                  f"+- {f['u_j_per_prefill'] or float('nan'):.4f} J/prefill (direct {f['direct_j_per_prefill']:.4f}), "
                  f"error {f['error_pct'] if f['error_pct'] is not None else float('nan'):+.1f} %, "
                  f"prefill {1000 * (f['prefill_s_per_batch'] or 0):.1f} ms, {f['method']} {f['flags']}", flush=True)
    session.close()
    out = Path(args.out)
    path = out if out.suffix == ".json" else out / "h200_phases.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config": cfg, "source": reason, "tolerance": TOLERANCE, "rows": rows,
               "all_agree_lag0": all(r["agrees_within_5pct_lag0"] for r in rows)}
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"wrote {path}; all within 5 % at lag 0: {payload['all_agree_lag0']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
