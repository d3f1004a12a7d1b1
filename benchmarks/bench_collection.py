"""Collection cost: a 10,000-item campaign (1,000 experiments x 10 cycles) vs a plain
``@pytest.mark.parametrize`` over 10,000 values, both with ``--collect-only -q`` in one run.

Usage: python benchmarks/bench_collection.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CAMPAIGN = """
name: bench
cycles: 10
defaults: {model: {name: gpt2, weights: random}}
grid:
  shared:
    workload.batch_size: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    workload.input_tokens: [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
    workload.output_tokens: [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
"""

CAMPAIGN_TEST = "def test_inference(lem_experiment):\n    pass\n"
PLAIN_TEST = "import pytest\n\n@pytest.mark.parametrize('value', range(10_000))\ndef test_plain(value):\n    pass\n"


def collect(directory: Path, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          cwd=directory, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or "10000 tests collected" not in proc.stdout:
        raise SystemExit(f"collection failed in {directory}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        campaign_dir, plain_dir = Path(tmp, "campaign"), Path(tmp, "plain")
        campaign_dir.mkdir()
        plain_dir.mkdir()
        (campaign_dir / "campaign.yaml").write_text(CAMPAIGN)
        (campaign_dir / "test_campaign.py").write_text(CAMPAIGN_TEST)
        (plain_dir / "test_plain.py").write_text(PLAIN_TEST)
        campaign_times, plain_times = [], []
        for _ in range(args.rounds):
            plain_times.append(collect(plain_dir))
            campaign_times.append(collect(campaign_dir, "--lem-campaign", "campaign.yaml"))
    campaign, plain = statistics.median(campaign_times), statistics.median(plain_times)
    print(f"plain parametrize, 10,000 items:   {plain:6.2f} s (median of {args.rounds})")
    print(f"campaign 1,000 x 10 cycles:        {campaign:6.2f} s (median of {args.rounds})")
    print(f"ratio campaign / plain:            {campaign / plain:6.2f}x   (target <= 1.5x)")


if __name__ == "__main__":
    main()
