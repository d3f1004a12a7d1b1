"""Validate on a GPU: the precision campaign, resident models, and the GPU-bound transformers path.

Parts (``--part``, each one command well under 10 minutes):

- ``precision``: ``pytest energy_suites/ --lem-campaign energy_suites/campaigns/gpu_precision.yaml``
  with shipped defaults (killed at ``--budget-s``, default 540 s), then the log, summary.json/csv,
  walltime.json and a table: per experiment n, mean adjusted J per output token, 95 % CI
  half-width (the summary's and a t-interval from the per-cycle values), duration CV between
  cycles; and the wall-time breakdown (measured / warmup / baseline / gaps / load / other).
- ``resident``: the same experiment (llama-3.2-1b, batch 32) measured in two campaigns that
  interleave it with qwen2.5-0.5b: ``reuse.max_resident 2`` (qwen stays resident while llama is
  measured) and ``1`` (qwen is evicted before llama loads). Prints both means with CIs, their
  difference and its uncertainty (Welch), and how the model was loaded in each.
- ``walltime`` (issue 28): ``host_bound.yaml`` and/or ``gpu_precision.yaml`` (``--campaign``) at
  shipped defaults, with a fresh (adaptive) baseline: the share of wall time measured and its
  pieces, per experiment n, mean and 95 % CI half-width, the first baseline's length and standard
  error, how many gaps ended with the idle re-check and what the revalidations did.
- ``compile``: llama-3.2-1b at batch 8 and 32, 128/128 tokens, through the backend directly:
  dynamic cache eager, static cache eager, static + torch.compile (cudagraphs backend), static +
  torch.compile reduce-overhead (inductor): first-call seconds (compile), then tokens/s and the
  CV of 5 timed runs. Says whether the GPU-bound path pays off.

Usage (repository root, on the GPU machine):
    python3 scripts/validate_h200_precision.py --part precision --out $OUT
    python3 scripts/validate_h200_precision.py --part resident --out $OUT
    python3 scripts/validate_h200_precision.py --part compile --out $OUT
    python3 scripts/validate_h200_precision.py --part walltime --campaign host_bound --budget-s 420 --out $OUT
    python3 scripts/validate_h200_precision.py --part walltime --campaign gpu_precision --budget-s 540 --out $OUT
    python3 scripts/validate_h200_precision.py --part precision --cpu --out /tmp/dry  # CPU dry run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
METRIC = "adjusted_energy_per_output_token_j"
RAW_METRIC = "energy_per_output_token_j"  # where no baseline exists (CPU dry runs)
T95 = {1: 12.71, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}

CPU_CAMPAIGN = """
name: gpu-precision
cycles: 2
order: interleaved
seed: 13
defaults:
  backend: transformers
  precision: float32
  model: {name: tiny-llama, weights: random}
  workload: {prompts: synthetic, input_tokens: 16, output_tokens: 8, num_prompts: 8}
grid: {shared: {workload.batch_size: [2, 4]}}
measurement: {energy_source: estimate}
gaps: {between_experiments: 0, between_cycles: 0}
"""

RESIDENT_CAMPAIGN = """
name: resident-{resident}
cycles: {cycles}
order: interleaved
seed: 21
defaults:
  backend: transformers
  precision: {precision}
  workload: {{prompts: synthetic, input_tokens: {inp}, output_tokens: {out}, batch_size: {bs}, num_prompts: {prompts}}}
experiments:
  - {{model: {{name: {a}, weights: random}}}}
  - {{model: {{name: {b}, weights: random}}, workload: {{num_prompts: {bs}}}}}
measurement: {{energy_source: {source}}}
gaps: {{between_experiments: {gap}, between_cycles: {gap}, max_wait: 15s}}
reuse: {{max_resident: {resident}}}
"""


def pytest_command(campaign: Path, results: Path, extra: list[str], cache: bool = False) -> list[str]:
    """``cache``: keep pytest's cache, so a later campaign on the same GPU reuses the baseline."""
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "energy_suites"), "--lem-campaign", str(campaign),
           "--lem-results-dir", str(results), "--lem-no-plots", "-q", *extra]
    if not cache:
        cmd[-1 - len(extra):-1 - len(extra)] = ["-p", "no:cacheprovider"]
    if not any(ep.name == "llenergy" for ep in entry_points(group="pytest11")):
        cmd[3:3] = ["-p", "pytest_llenergy.plugin"]
    return cmd


def run_campaign(campaign: Path, out: Path, budget_s: float, cache: bool = False) -> dict[str, Any]:
    """Run one campaign under a time limit; the log and outputs go to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.perf_counter()
    with open(out / "pytest.log", "w") as log:
        try:
            rc = subprocess.run(pytest_command(campaign, out / "results", [], cache), cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, timeout=budget_s).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    wall = time.perf_counter() - started
    run_dirs = sorted((out / "results").glob("*/*/experiments"))
    if not run_dirs:
        return {"rc": rc, "wall_s": wall, "error": "no results (see pytest.log)"}
    run_dir = run_dirs[-1].parent
    for name in ("summary.json", "summary.csv", "walltime.json", "manifest.json"):
        if (run_dir / name).exists():
            shutil.copy(run_dir / name, out / name)
    return {"rc": rc, "wall_s": wall, "run_dir": str(run_dir), **figures(run_dir)}


def t_interval(values: list[float]) -> dict[str, Any]:
    n = len(values)
    if n < 2:
        return {"n": n, "mean": values[0] if values else None, "halfwidth_pct": None}
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half = T95.get(n - 1, 1.96 + 2.5 / (n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "halfwidth": half, "halfwidth_pct": 100 * half / abs(mean) if mean else None}


def figures(run_dir: Path) -> dict[str, Any]:
    """Per experiment: t-interval of the main metric, the summary's CI, duration CV, loads; wall time."""
    per: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((run_dir / "experiments").glob("*.json")):
        r = json.loads(path.read_text())
        if r.get("status") == "passed":
            per.setdefault(r["experiment_id"], []).append(r)
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    stats = {e["experiment_id"]: e.get("stats", {}).get(METRIC) or e.get("stats", {}).get(RAW_METRIC, {})
             for e in summary.get("experiments", [])}
    experiments = {}
    for exp_id, rows in per.items():
        metric = METRIC if any((r.get("energy") or {}).get(METRIC) is not None for r in rows) else RAW_METRIC
        values = [r["energy"][metric] for r in rows if r.get("energy") and r["energy"].get(metric) is not None]
        durations = [r["duration_s"] for r in rows if r.get("duration_s")]
        s = stats.get(exp_id, {})
        ci = (s.get("ci_high") - s.get("ci_low")) / 2 / abs(s["mean"]) * 100 if s.get("ci_low") is not None and s.get("mean") else None
        experiments[exp_id] = {
            **t_interval(values), "metric": metric, "values": values, "summary_ci_halfwidth_pct": ci,
            "duration_cv_pct": 100 * statistics.stdev(durations) / statistics.fmean(durations) if len(durations) > 1 else None,
            "baseline_share_pct": _baseline_share(rows),
            "loads": [r.get("load", {}).get("status") for r in rows],
            "warmup": [(r.get("warmup") or {}).get("outcome") for r in rows],
            "warmup_s": [(r.get("warmup") or {}).get("duration_s") for r in rows]}
    return {"experiments": experiments, "wall_time": summary.get("wall_time")}


def _baseline_share(rows: list[dict[str, Any]]) -> float | None:
    shares = [1 - r["energy"]["adjusted_energy_j"] / r["energy"]["energy_j"] for r in rows
              if r.get("energy") and r["energy"].get("adjusted_energy_j") and r["energy"].get("energy_j")]
    return 100 * statistics.fmean(shares) if shares else None


def table(result: dict[str, Any]) -> list[str]:
    lines = [f"{'experiment':46} {'n':>2} {'mean J/out':>11} {'t CI':>7} {'sum CI':>7} {'dur CV':>7} {'base %':>6}  loads"]
    for exp_id, e in result.get("experiments", {}).items():
        def pct(v):
            return "-" if v is None else f"±{v:.1f}%"
        lines.append(f"{exp_id:46} {e['n']:>2} {e['mean'] or float('nan'):>11.4g} {pct(e['halfwidth_pct']):>7} "
                     f"{pct(e['summary_ci_halfwidth_pct']):>7} {pct(e['duration_cv_pct']):>7} "
                     f"{e['baseline_share_pct'] or float('nan'):>6.1f}  {','.join(map(str, e['loads']))}")
    wall = result.get("wall_time")
    if wall:
        lines.append(f"wall {wall['wall_s']:.1f} s: " + ", ".join(
            f"{k} {v['s']:.1f} s ({v['pct']:.0f} %)" for k, v in wall["pieces"].items()))
    lines.append(f"pytest rc {result.get('rc')}, {result.get('wall_s', 0):.1f} s including imports and model builds")
    return lines


def part_precision(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    campaign = ROOT / "energy_suites" / "campaigns" / "gpu_precision.yaml"
    if args.cpu:
        campaign = out / "cpu_precision.yaml"
        out.mkdir(parents=True, exist_ok=True)
        campaign.write_text(CPU_CAMPAIGN)
    result = run_campaign(campaign, out / "precision", args.budget_s)
    result["lines"] = table(result)
    return result


def baseline_lines(run_dir: Path) -> list[str]:
    """The first baseline, the re-checks taken in gaps, and what the revalidations adopted."""
    items = sorted((json.loads(p.read_text()) for p in (run_dir / "experiments").glob("*.json")),
                   key=lambda r: r.get("started_at") or "")
    if not items or not items[0].get("baseline"):
        return ["no baseline recorded"]
    first = items[0]["baseline"]
    powers = [round(next(iter(r["baseline"]["power_w"].values())), 2) for r in items if r.get("baseline")]
    in_gap = sum("idle re-check" in ((r.get("gap") or {}).get("reason") or "") for r in items)
    return [f"first baseline: {first['method']}, {first.get('duration_s') or 0:.1f} s, "
            f"{next(iter(first['power_w'].values())):.2f} W, se {first.get('se_w')} W",
            f"gaps that ended with the idle re-check: {in_gap} of {len(items) - 1}; "
            f"baseline subtracted per item (W): {powers}"]


def bracketed_lines(run_dir: Path) -> list[str]:
    """What if each item subtracted the mean of the two re-checks that bracket it (``recheck_before_w``,
    ``recheck_after_w``), or the first baseline throughout (``anchor_w`` of a tracked item), instead of
    the baseline in force: per experiment, the t CI each way."""
    per: dict[str, list[tuple[float, float, float]]] = {}
    for path in sorted((run_dir / "experiments").glob("*.json")):
        r = json.loads(path.read_text())
        e, b = r.get("energy") or {}, r.get("baseline") or {}
        before, after = b.get("recheck_before_w"), b.get("recheck_after_w")
        if r.get("status") != "passed" or e.get("adjusted_energy_j") is None or not before or not e.get("output_tokens"):
            continue
        bracket = sum(before.values()) if not after else (sum(before.values()) + sum(after.values())) / 2
        used = sum(b["power_w"].values())
        alt = e["adjusted_energy_j"] + (used - bracket) * e["duration_s"]
        fixed = e["adjusted_energy_j"] + (used - sum((b.get("anchor_w") or b["power_w"]).values())) * e["duration_s"]
        per.setdefault(r["experiment_id"], []).append(
            (e["adjusted_energy_j"] / e["output_tokens"], alt / e["output_tokens"], fixed / e["output_tokens"]))
    if not per:
        return ["bracketed baseline: no re-checks recorded (recheck_before_w)"]
    lines = ["baseline rules (what if): t CI of adjusted J/out-token, as subtracted -> mean of the bracketing "
             "re-checks | first baseline throughout"]
    for exp_id, rows in per.items():
        now, alt, fixed = (t_interval([row[k] for row in rows]) for k in range(3))
        lines.append(f"  {exp_id:46} {_ci(now)} -> {_ci(alt)} | {_ci(fixed)}")
    return lines


def _ci(interval: dict[str, Any]) -> str:
    return f"{interval['mean'] or float('nan'):.4g} ±{interval['halfwidth_pct'] or float('nan'):.1f}%"


def inductor_cache() -> dict[str, Any]:
    """torch.compile's cache before a run (inductor's graphs, Triton's kernels): a compile that finds it
    filled by an earlier run on this machine costs a fraction of a cold one (benchmarks/bench_compile_cache.py),
    so a campaign's warmup share is only comparable between runs whose cache state is known."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    root = Path(cache_dir())
    files = [p for p in root.rglob("*") if p.is_file()]
    return {"dir": str(root), "files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def part_walltime(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    names = ("host_bound", "gpu_precision") if args.campaign == "both" else (args.campaign,)
    runs, lines = {}, []
    for name in names:
        cache = inductor_cache()
        lines.append(f"inductor cache before {name}.yaml: {cache['dir']}, {cache['files']} files, "
                     f"{cache['bytes'] / 1e6:.1f} MB ({'cold' if not cache['files'] else 'filled by an earlier run'})")
        campaign = ROOT / "energy_suites" / "campaigns" / f"{name}.yaml"
        if args.cpu:
            campaign = out / f"cpu_{name}.yaml"
            out.mkdir(parents=True, exist_ok=True)
            campaign.write_text(CPU_CAMPAIGN.replace("energy_source: estimate", "energy_source: replay"))
        result = run_campaign(campaign, out / name, args.budget_s / len(names))
        result["inductor_cache_before"] = cache
        runs[name] = result
        lines += [f"== {name}.yaml", *table(result)]
        if result.get("run_dir"):
            lines += baseline_lines(Path(result["run_dir"])) + bracketed_lines(Path(result["run_dir"]))
    return {"runs": runs, "lines": lines}


def part_resident(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    gpu = not args.cpu
    values = dict(a="llama-3.2-1b" if gpu else "tiny-llama", b="qwen2.5-0.5b" if gpu else "tiny-gpt2",
                  precision="bfloat16" if gpu else "float32", inp=128 if gpu else 16, out=128 if gpu else 8,
                  bs=32 if gpu else 4, prompts=96 if gpu else 8, cycles=args.cycles or (8 if gpu else 2),
                  source="nvml" if gpu else "estimate", gap="adaptive" if gpu else 0)
    runs: dict[int, list[dict[str, Any]]] = {2: [], 1: []}
    for rep in range(args.repeats):  # A B A B: drift over the part falls on both variants alike
        for resident in (2, 1):
            path = out / f"resident_{resident}.yaml"
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(RESIDENT_CAMPAIGN.format(resident=resident, **values))
            runs[resident].append(run_campaign(path, out / f"resident_{resident}_{rep}",
                                                 args.budget_s / 2 / args.repeats, cache=True))
    a = {}
    for k, reps in runs.items():
        values_k = [v for r in reps for i, e in r.get("experiments", {}).items() if values["a"] in i for v in e["values"]]
        loads = [x for r in reps for i, e in r.get("experiments", {}).items() if values["a"] in i for x in e["loads"]]
        a[k] = {**t_interval(values_k), "loads": loads} if values_k else None
    lines = []
    for k, e in a.items():
        if e:
            lines.append(f"max_resident {k}: {values['a']} mean {e['mean']:.5g} J/out ±{e['halfwidth_pct'] or float('nan'):.1f}% "
                         f"(n {e['n']}), loads {','.join(map(str, e['loads']))}")
    verdict = None
    if a.get(1) and a.get(2) and a[1].get("sd") is not None and a[2].get("sd") is not None:
        diff = a[2]["mean"] - a[1]["mean"]
        se = math.sqrt(a[1]["sd"] ** 2 / a[1]["n"] + a[2]["sd"] ** 2 / a[2]["n"])
        verdict = {"difference": diff, "difference_pct": 100 * diff / a[1]["mean"], "se": se,
                   "within_2se": abs(diff) <= 2 * se}
        lines.append(f"difference (resident - alone): {diff:+.5g} J/out ({verdict['difference_pct']:+.2f} %), "
                     f"2 x SE {2 * se:.3g}: {'within' if verdict['within_2se'] else 'OUTSIDE'} its uncertainty")
    return {"runs": runs, "comparison": verdict, "lines": lines}


def part_compile(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from pytest_llenergy.backends.transformers.backend import TransformersSession
    from pytest_llenergy.config.experiment import ExperimentConfig

    gpu = not args.cpu
    variants = {"dynamic eager": {}, "static eager": {"cache_implementation": "static"},
                "static + cudagraphs": {"cache_implementation": "static", "torch_compile": "reduce-overhead",
                                        "torch_compile_backend": "cudagraphs"},
                "static + inductor reduce-overhead": {"cache_implementation": "static", "torch_compile": "reduce-overhead"}}
    if not gpu:
        variants = {k: v for k, v in variants.items() if "cudagraphs" not in k and "inductor" not in k}
    import torch
    import transformers

    print(f"torch {torch.__version__}, transformers {transformers.__version__}", flush=True)
    rows, lines, deadline = [], [], time.perf_counter() + args.budget_s
    for bs in ((8, 32) if gpu else (2,)):
        for name, section in variants.items():
            if time.perf_counter() > deadline:
                lines.append(f"time budget reached before {name} at batch {bs}")
                break
            exp = ExperimentConfig.model_validate({
                "model": {"name": "llama-3.2-1b" if gpu else "tiny-llama", "weights": "random"},
                "precision": "bfloat16" if gpu else "float32", "transformers": section,
                "workload": {"batch_size": bs, "num_prompts": bs, "input_tokens": 128 if gpu else 16,
                             "output_tokens": 128 if gpu else 8}})
            session = TransformersSession(exp)
            try:
                workload = session.prepare(exp.workload)
                t0 = time.perf_counter()
                session.probe(workload, 4)
                probe_first = time.perf_counter() - t0
                t0 = time.perf_counter()
                session.run(workload)
                first = time.perf_counter() - t0
                timed = [session.run(workload).duration_s for _ in range(5)]
            except Exception as exc:  # noqa: BLE001 - report and go on to the next variant
                rows.append({"variant": name, "batch_size": bs, "error": f"{type(exc).__name__}: {exc}"})
                lines.append(f"bs {bs:>2} {name:34} ERROR {type(exc).__name__}: {str(exc)[:300]}")
                print(lines[-1], flush=True)
                continue
            finally:
                session.close()
            mean = statistics.fmean(timed)
            row = {"variant": name, "batch_size": bs, "probe_first_s": probe_first, "first_full_s": first,
                   "mean_s": mean, "cv_pct": 100 * statistics.stdev(timed) / mean,
                   "output_tokens_per_s": bs * exp.workload.output_tokens / mean}
            rows.append(row)
            lines.append(f"bs {bs:>2} {name:34} first probe {probe_first:6.1f} s, first run {first:6.2f} s, "
                         f"run {mean:6.3f} s (CV {row['cv_pct']:.1f} %), {row['output_tokens_per_s']:8.0f} out tok/s")
            print(lines[-1], flush=True)
            (out / "compile.partial.json").write_text(json.dumps(rows, indent=2, default=str))
    return {"rows": rows, "lines": lines}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--part", choices=("precision", "resident", "compile", "walltime"), default="precision")
    parser.add_argument("--campaign", choices=("host_bound", "gpu_precision", "both"), default="both",
                        help="walltime: which campaign(s); the budget is split between them.")
    parser.add_argument("--budget-s", type=float, default=540.0, help="Wall-time limit of the part.")
    parser.add_argument("--cpu", action="store_true", help="A CPU dry run on tiny models.")
    parser.add_argument("--cycles", type=int, default=None, help="Cycles of each resident campaign (default 8).")
    parser.add_argument("--repeats", type=int, default=1, help="Resident: run the two campaigns A B A B ... this many times.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    parts = {"precision": part_precision, "resident": part_resident, "compile": part_compile, "walltime": part_walltime}
    result = parts[args.part](args, args.out)
    (args.out / f"{args.part}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = "\n".join(result["lines"])
    (args.out / f"{args.part}.txt").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
