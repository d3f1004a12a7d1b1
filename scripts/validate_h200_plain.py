#!/usr/bin/env python3
"""Validate plain `energy` tests on a real GPU (written for one H200): short windows, budgets, flags; < 3 min.

    python3 scripts/validate_h200_plain.py --out $OUT                         # NVML, ~2 min of GPU time
    python3 scripts/validate_h200_plain.py --source "replay?counter_period=0.1" --quick   # CPU dry run

Parts (an error is recorded in plain_summary.json and the next part still runs):
  budgets   ``pytest energy_suites/test_budgets.py`` (a 20 ms numpy window recorded after the block:
            once 0 J raw / -2.6 J adjusted on the H200): verdicts, the window table, --lem-json
  plain     a generated file of plain tests, idle (time.sleep) and busy (bf16 torch matmul on the GPU)
            windows of 5, 20, 50, 100 ms (x5 each) and 1, 2, 3 s, tokens recorded inside and after the
            block, budgets that must pass and must fail; one idle baseline for the session (up to 30 s,
            taken by the budgets part; the pytest cache then reuses it); per window: raw J, adjusted J, uncertainty, power-capped share, flags
  tiling    back-to-back short windows (20 and 50 ms) inside one long window, idle and busy, through the
            EnergyMeter: the short windows' mean power against the long window's edge-corrected
            power (the counter's), and how many short windows read 0 J (must be none)
Raw data: budgets.json / plain.json (the plugin's --lem-json), *.log (pytest output), tiling.json,
plain_summary.json (everything printed). Needs torch, nvidia-ml-py, numpy; pytest and this package.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LENGTHS_MS = (5, 20, 50, 100)
LONG_S = (1.0, 2.0, 3.0)

PLAIN_TESTS = '''
import time
import pytest

try:
    import torch
    CUDA = torch.cuda.is_available()
except ImportError:
    torch, CUDA = None, False
if CUDA:
    A = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()


def busy(seconds):
    """bf16 matmuls on the GPU (numpy on a CPU box) until ``seconds`` have passed."""
    end = time.perf_counter() + seconds
    if CUDA:
        while time.perf_counter() < end:
            for _ in range(4):
                A @ A
            torch.cuda.synchronize()
    else:
        import numpy as np
        a = np.ones((128, 128))
        while time.perf_counter() < end:
            a @ a


@pytest.mark.parametrize("ms", LENGTHS_MS)
@pytest.mark.parametrize("kind", ["idle", "busy"])
def test_short(energy, kind, ms):
    for i in range(5):
        with energy.measure(f"{kind}-{ms}ms") as w:
            (busy if kind == "busy" else time.sleep)(ms / 1000)
            if i % 2:
                w.record(output_tokens=100)
        if not i % 2:
            w.record(output_tokens=100)  # after the block


@pytest.mark.parametrize("seconds", LONG_S)
@pytest.mark.parametrize("kind", ["idle", "busy"])
def test_long(energy, kind, seconds):
    with energy.measure(f"{kind}-{seconds:g}s") as w:
        (busy if kind == "busy" else time.sleep)(seconds)
    w.record(output_tokens=1000)


@pytest.mark.energy_budget(energy_per_output_token="10 J")
def test_budget_must_pass_20ms_after_the_block(energy):
    with energy.measure("generate") as w:
        busy(0.02)
    w.record(output_tokens=100)


@pytest.mark.energy_budget(energy_per_output_token=1e-6, adjusted=False)
def test_budget_must_fail_raw_50ms(energy):
    with energy.measure("generate") as w:
        busy(0.05)
    w.record(output_tokens=100)


@pytest.mark.energy_budget(energy="50 J")
def test_budget_must_pass_idle_1s_adjusted(energy):
    with energy.measure("idle"):
        time.sleep(1.0)
'''.replace("LENGTHS_MS", repr(LENGTHS_MS)).replace("LONG_S", repr(LONG_S))

EXPECTED = {"test_budget_must_pass_20ms_after_the_block": "PASSED", "test_budget_must_fail_raw_50ms": "OVER BUDGET",
            "test_budget_must_pass_idle_1s_adjusted": "PASSED", "test_matrix_work_stays_within_budget": "PASSED",
            "test_tokens_counted_after_the_window": "PASSED"}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Validate plain energy tests on a GPU.")
    ap.add_argument("--source", default="nvml", help="nvml (default), or e.g. 'replay?counter_period=0.1' (CPU dry run)")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "validate-plain-out")), help="output folder")
    ap.add_argument("--quick", action="store_true", help="a short tiling span (dry runs)")
    return ap.parse_args()


def run_pytest(args: argparse.Namespace, target: str, name: str, cache: Path, extra: list[str]) -> dict[str, Any]:
    """``pytest target`` in a subprocess with this checkout first on the path; its verdicts and --lem-json."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    json_path = args.out / f"{name}.json"
    cmd = [sys.executable, "-m", "pytest", target, "-v", "-p", "no:randomly", "-o", f"cache_dir={cache}",
           "--lem-energy-source", args.source, "--lem-json", str(json_path), *extra]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, text=True, capture_output=True, timeout=600)
    (args.out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    verdicts = {}
    for line in proc.stdout.splitlines():
        head, _, status = line.partition(" ")
        test = head.rpartition("::")[2].split("[")[0]
        if "::" in head and test in EXPECTED:
            verdicts[test] = "OVER BUDGET" if "OVER BUDGET" in status else status.split("[")[0].strip()
    wrong = {t: v for t, v in verdicts.items() if v != EXPECTED[t]}
    payload = json.loads(json_path.read_text()) if json_path.exists() else {}
    return {"returncode": proc.returncode, "seconds": round(time.monotonic() - started, 1), "verdicts": verdicts,
            "wrong_verdicts": wrong, "windows": window_rows(payload), "json_verdicts": payload.get("verdicts"),
            "tail": proc.stdout.splitlines()[-40:]}


def window_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for entry in payload.get("windows") or []:
        m = entry["metrics"]
        for i in range(entry["n"]):
            def value(col: str, i: int = i, m: dict[str, Any] = m) -> float | None:
                values = (m.get(col) or {}).get("values") or []
                return values[i] if i < len(values) else None
            rows.append({"window": entry["key"].split("::", 1)[1], "i": i, "duration_s": value("duration_s"),
                         "raw_j": value("energy_j"), "adjusted_j": value("energy_adjusted_j"),
                         "uncertainty_j": entry["uncertainty_j"][i], "adjusted_uncertainty_j": entry["adjusted_uncertainty_j"][i],
                         "j_per_out_token": value("adjusted_energy_per_output_token_j") or value("energy_per_output_token_j"),
                         "power_capped_share": entry["power_capped_share"][i], "flags": entry["window_flags"][i],
                         "baseline": entry["baseline"]})
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"  {'window':58s} {'dur s':>7s} {'raw J':>9s} {'adj J':>9s} {'± adj J':>8s} {'J/tok':>9s} {'capped':>6s}  flags")
    for r in rows:
        def f(x: float | None, spec: str = ".4g") -> str:
            return "-" if x is None else format(x, spec)
        print(f"  {r['window'][:58]:58s} {f(r['duration_s'], '.4f'):>7s} {f(r['raw_j']):>9s} {f(r['adjusted_j']):>9s} "
              f"{f(r['adjusted_uncertainty_j'] if r['adjusted_uncertainty_j'] is not None else r['uncertainty_j'], '.2g'):>8s} "
              f"{f(r['j_per_out_token']):>9s} {f(r['power_capped_share'], '.2f'):>6s}  {','.join(r['flags'])}")


def tiling(args: argparse.Namespace) -> dict[str, Any]:
    """Back-to-back short windows inside one long one: their mean power vs the long window's."""
    from pytest_llenergy.energy import EnergyMeter, describe, resolve_source

    source, _ = resolve_source(args.source)
    gpu = GpuLoad()
    out: dict[str, Any] = {"source": describe(source), "runs": []}
    span = 0.6 if args.quick else 2.0
    for kind in ("idle", "busy"):
        for ms in (20, 50):
            outer_meter, inner_meter = EnergyMeter(source, 10, cuda_sync=gpu.sync), EnergyMeter(source, 10, cuda_sync=gpu.sync)
            inner = []
            with outer_meter.measure("outer") as outer:
                end = time.perf_counter() + span
                while time.perf_counter() < end:
                    with inner_meter.measure("inner") as w:
                        gpu.busy(ms / 1000) if kind == "busy" else time.sleep(ms / 1000)
                    inner.append(w.result)
            o = outer.result
            watts = [m.energy_j / m.duration_s for m in inner]
            run = {"kind": kind, "ms": ms, "n": len(inner), "outer_w": o.energy_j / o.duration_s,
                   "outer_method": o.edge_method, "inner_mean_w": statistics.fmean(watts),
                   "inner_time_weighted_w": sum(m.energy_j for m in inner) / sum(m.duration_s for m in inner),
                   "inner_zero_j": sum(1 for m in inner if not m.energy_j or m.energy_j <= 0),
                   "inner_methods": sorted({m.edge_method or "-" for m in inner}),
                   "inner_median_rel_uncertainty": statistics.median(
                       (m.uncertainty_j or 0.0) / m.energy_j for m in inner if m.energy_j),
                   "inner": [{"duration_s": m.duration_s, "energy_j": m.energy_j, "uncertainty_j": m.uncertainty_j,
                              "n_samples": m.n_samples, "flags": list(m.flags)} for m in inner]}
            run["ratio"] = run["inner_time_weighted_w"] / run["outer_w"]
            out["runs"].append(run)
            print(f"  {kind:4s} {ms:3d} ms x{run['n']:3d}: short windows {run['inner_time_weighted_w']:.1f} W vs long window "
                  f"{run['outer_w']:.1f} W (ratio {run['ratio']:.3f}); 0 J: {run['inner_zero_j']}; median rel. "
                  f"uncertainty {run['inner_median_rel_uncertainty']:.1%}; methods {run['inner_methods']}")
    gpu.close()
    source.close()
    return out


class GpuLoad:
    """bf16 matmuls on CUDA when torch sees a GPU, else a numpy loop (dry runs)."""

    def __init__(self) -> None:
        try:
            import torch
            self.torch = torch if torch.cuda.is_available() else None
        except ImportError:
            self.torch = None
        if self.torch is not None:
            self.a = self.torch.randn(4096, 4096, device="cuda", dtype=self.torch.bfloat16)

    @property
    def sync(self) -> Any:
        return self.torch.cuda.synchronize if self.torch is not None else None

    def busy(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            if self.torch is not None:
                for _ in range(4):
                    self.a @ self.a
                self.torch.cuda.synchronize()
            else:
                sum(i * i for i in range(2000))

    def close(self) -> None:
        if self.torch is not None:
            del self.a
            self.torch.cuda.empty_cache()


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"source": args.source, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        plain_file = Path(tmp) / "test_plain_h200.py"
        plain_file.write_text(PLAIN_TESTS)
        for name, target, extra in (("budgets", "energy_suites/test_budgets.py", ["--lem-baseline-refresh"]),
                                    ("plain", str(plain_file), [])):
            print(f"== {name}: pytest {target}")
            try:
                part = run_pytest(args, target, name, cache, extra)
            except Exception:  # record and go on
                part = {"error": traceback.format_exc()}
                print(part["error"])
            else:
                print(f"  exit {part['returncode']} in {part['seconds']} s; verdicts {part['verdicts']}; "
                      f"wrong: {part['wrong_verdicts'] or 'none'}")
                print_rows(part["windows"])
                zero = [r["window"] for r in part["windows"] if not r["raw_j"] or r["raw_j"] <= 0]
                print(f"  windows with raw energy <= 0: {zero or 'none'}")
            summary[name] = part
    print("== tiling: back-to-back short windows inside one long window")
    try:
        summary["tiling"] = tiling(args)
        (args.out / "tiling.json").write_text(json.dumps(summary["tiling"], indent=1))
    except Exception:
        summary["tiling"] = {"error": traceback.format_exc()}
        print(summary["tiling"]["error"])
    (args.out / "plain_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"raw data: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
