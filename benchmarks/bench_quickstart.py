"""Wall time of the quickstart campaign on N pinned cores, with the plugin's thread setting and
with oversubscription (OMP_NUM_THREADS = 4 x cores), side by side.

    python benchmarks/bench_quickstart.py --cores 0,1

Prints the load average before each run (the README's figure is for an idle machine) and the
ratio oversubscribed / plugin default. Linux only (``taskset``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def plugin_args() -> list[str]:
    """Load the plugin from this checkout when it is not installed (no pytest11 entry point)."""
    from importlib import metadata

    installed = any(ep.name == "llenergy" for ep in metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "pytest_llenergy.plugin"]


def run(cores: str, omp: str | None) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")  # a CPU-only machine
    env.pop("OMP_NUM_THREADS", None)
    env.pop("LLENERGY_THREADS", None)
    if omp:
        env["OMP_NUM_THREADS"] = omp
    with tempfile.TemporaryDirectory() as out:
        cmd = ["taskset", "-c", cores, sys.executable, "-m", "pytest", "energy_suites/", "-q", "-p", "no:cacheprovider",
               *plugin_args(), "--lem-energy-source", "estimate",
               "--lem-campaign", "energy_suites/campaigns/quickstart.yaml", "--lem-results-dir", out]
        load = os.getloadavg()[0]
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    return {"omp_num_threads": omp or "plugin default", "wall_s": round(wall, 1), "load_before": round(load, 2),
            "exit": done.returncode, "tail": done.stdout.splitlines()[-3:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="0,1", help="taskset CPU list (default 0,1: a 2-core machine)")
    args = parser.parse_args()
    n = len(args.cores.split(","))
    default = run(args.cores, None)
    over = run(args.cores, str(4 * n))
    print(json.dumps({"default": default, "oversubscribed": over}, indent=2))
    print(f"quickstart on {n} cores: {default['wall_s']} s with the plugin's threads, {over['wall_s']} s with "
          f"{4 * n} threads (x{over['wall_s'] / default['wall_s']:.2f})")


if __name__ == "__main__":
    main()
