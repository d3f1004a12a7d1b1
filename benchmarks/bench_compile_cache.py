"""torch.compile's first call with inductor's cache cold vs kept: why the containers keep it on /cache.

Runs a one-item campaign on the transformers backend's GPU-bound path (static cache +
``torch_compile``; tiny-llama on the CPU, where inductor emits C++) three times, each a fresh pytest
process as an ephemeral container is: ``cold`` with an empty ``TORCHINDUCTOR_CACHE_DIR``, ``kept``
with the directory the cold run filled (what ``pytest_llenergy/docker/compose.yaml`` gives every
container: ``/cache/torchinductor`` on the shared volume), and ``cold again`` with another empty one
(inductor's default, ``/tmp/torchinductor_<user>``, is an empty one in each new container).
Prints each run's warmup (the compile is paid there) and the ratio cold / kept.

Usage: python benchmarks/bench_compile_cache.py [--out /tmp/bench_compile_cache]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = {
    "name": "compile-cache",
    "cycles": 1,
    "defaults": {
        "backend": "transformers",
        "model": {"name": "tiny-llama", "weights": "random"},
        "precision": "float32",
        "workload": {"prompts": "synthetic", "num_prompts": 4, "input_tokens": 16, "output_tokens": 8, "batch_size": 4},
        "decoder": {"temperature": 0.0},
        "transformers": {"cache_implementation": "static", "torch_compile": "default"},
    },
    "experiments": [{}],
    "measurement": {"baseline": {"duration_s": 1}, "warmup": {"max_time_s": 600}},
}


def run(out: Path, name: str, cache: Path) -> float:
    """One fresh pytest process; the first item's warmup seconds (its compile)."""
    results = out / name
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "energy_suites" / "test_inference.py"), "-q", "-p", "no:randomly",
           "-p", "no:cacheprovider", "--lem-campaign", str(out / "campaign.yaml"), "--lem-results-dir", str(results),
           "--lem-no-plots"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{name}: pytest rc {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    (item,) = results.rglob("experiments/*.json")
    return float(json.loads(item.read_text())["timing"]["warmup_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_compile_cache"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    (args.out / "campaign.yaml").write_text(yaml.safe_dump(CAMPAIGN))
    kept = args.out / "kept-cache"
    cold = run(args.out, "cold", kept)
    warm = run(args.out, "kept", kept)
    again = run(args.out, "cold-again", args.out / "empty-cache")
    print("first item's warmup (torch.compile paid there), each a fresh process:")
    print(f"  cold (empty inductor cache)           {cold:6.1f} s")
    print(f"  kept (the cache the cold run filled)  {warm:6.1f} s")
    print(f"  cold again (another empty cache)      {again:6.1f} s")
    print(f"cold / kept: {cold / warm:.1f}x (cold again / kept: {again / warm:.1f}x)")


if __name__ == "__main__":
    main()
