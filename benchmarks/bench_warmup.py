"""Quickstart wall time with warmup paid once on a probe vs the old full warmup before every item.

Runs ``pytest energy_suites/test_inference.py`` on the quickstart campaign (tiny-llama on CPU)
twice, side by side: ``old`` = ``warmup: {once: false, probe_tokens: <output length>}`` (the full
first batch until stable, before every item, as before issue 13) and ``new`` = shipped defaults
(a 4-token probe of the first batch, converged once per model and shape, then one re-warm probe).
Prints the wall time and its breakdown for both and their ratio.

Both variants keep the shipped ``max_time_s`` budget, so the difference is what paying once on a
probe saves, not the budget.

Usage: python benchmarks/bench_warmup.py [--cycles 3] [--num-prompts N] [--out /tmp/bench_warmup]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"old": {"once": False, "probe_tokens": 100_000}, "new": {}}


def run(variant: str, settings: dict, out: Path, cycles: int, num_prompts: int | None) -> dict:
    campaign = yaml.safe_load((ROOT / "energy_suites/campaigns/quickstart.yaml").read_text())
    campaign["name"] = f"quickstart-{variant}"
    campaign["measurement"]["warmup"].update(settings)
    if num_prompts:
        campaign["defaults"]["workload"]["num_prompts"] = num_prompts
    path = out / f"{variant}.yaml"
    path.write_text(yaml.safe_dump(campaign))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "energy_suites/test_inference.py"), "-q",
                           "--lem-campaign", str(path), "--lem-results-dir", str(out / "results"), "--lem-cycles",
                           str(cycles), "--lem-no-plots", "-p", "no:cacheprovider"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    run_dir = sorted((out / "results" / campaign["name"]).iterdir())[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"rc": proc.returncode, "process_wall_s": wall, "wall_time": summary.get("wall_time")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_warmup"))
    parser.add_argument("--num-prompts", type=int, default=None, help="Override the quickstart's 32 prompts (shorter windows).")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    found = {name: run(name, settings, args.out, args.cycles, args.num_prompts) for name, settings in VARIANTS.items()}
    for name, r in found.items():
        pieces = r["wall_time"]["pieces"]
        print(f"{name:4} rc {r['rc']} process {r['process_wall_s']:6.1f} s, session {r['wall_time']['wall_s']:6.1f} s: "
              + ", ".join(f"{k} {v['s']:.1f} s ({v['pct']:.0f} %)" for k, v in pieces.items()))
    old, new = found["old"], found["new"]
    print(f"new / old process wall time: {new['process_wall_s'] / old['process_wall_s']:.2f}; warmup seconds "
          f"{new['wall_time']['pieces']['warmup']['s']:.1f} vs {old['wall_time']['pieces']['warmup']['s']:.1f}")
    (args.out / "bench_warmup.json").write_text(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
