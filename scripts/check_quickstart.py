"""Check the CI quickstart run's output, so that the step cannot pass with items skipped or no statistics.

    python scripts/check_quickstart.py RESULTS_DIR [--campaign quickstart] [--experiments 2] [--cycles 3]

Passes (exit 0, one line per experiment) when RESULTS_DIR/<campaign>/ holds exactly one run whose
manifest lists every planned item as passed (none skipped, failed or pending), whose summary.json
has the expected number of experiments, each with n = cycles and a finite interval around its mean
for the headline metric, and whose report.html exists. Otherwise exits 1 naming what is wrong.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

METRICS = ("adjusted_energy_per_output_token_j", "energy_per_output_token_j")


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _experiment_problems(entry: dict, cycles: int) -> list[str]:
    name = entry.get("experiment_id", "?")
    metric = next((m for m in METRICS if m in entry.get("stats", {})), None)
    if metric is None:
        return [f"{name}: no statistics for {' or '.join(METRICS)}"]
    block = entry["stats"][metric]
    problems = []
    if block.get("n") != cycles:
        problems.append(f"{name}: {metric} n = {block.get('n')}, expected {cycles}")
    low, mean, high = block.get("ci_low"), block.get("mean"), block.get("ci_high")
    if not (_finite(low) and _finite(mean) and _finite(high) and low <= mean <= high and low < high):
        problems.append(f"{name}: {metric} has no interval around its mean (ci_low={low}, mean={mean}, ci_high={high})")
    return problems


def check(results_dir: Path, campaign: str, experiments: int, cycles: int) -> tuple[list[str], list[str]]:
    """(problems, lines describing what was found)."""
    runs = sorted(p for p in (results_dir / campaign).glob("*") if p.is_dir())
    if len(runs) != 1:
        return [f"expected one run under {results_dir / campaign}, found {len(runs)}"], []
    run = runs[0]
    problems, lines = [], []
    manifest_path = run / "manifest.json"
    if not manifest_path.is_file():
        problems.append(f"{manifest_path} missing")
    else:
        entries = json.loads(manifest_path.read_text())["entries"]
        statuses = {item: e.get("status") for item, e in entries.items()}
        bad = {item: s for item, s in statuses.items() if s != "passed"}
        if bad:
            problems.append(f"items not passed: {bad}")
        if len(statuses) != experiments * cycles:
            problems.append(f"{len(statuses)} items planned, expected {experiments * cycles}")
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        return [*problems, f"{summary_path} missing"], lines
    found = json.loads(summary_path.read_text())["experiments"]
    if len(found) != experiments:
        problems.append(f"summary.json has {len(found)} experiments, expected {experiments}")
    for entry in found:
        problems += _experiment_problems(entry, cycles)
        metric = next((m for m in METRICS if m in entry.get("stats", {})), None)
        if metric:
            b = entry["stats"][metric]
            lines.append(f"{entry.get('experiment_id')}: {metric} n={b.get('n')} mean={b.get('mean')} "
                         f"[{b.get('ci_low')}, {b.get('ci_high')}] ({b.get('method')})")
    if not (run / "report.html").is_file():
        problems.append(f"{run / 'report.html'} missing")
    return problems, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--campaign", default="quickstart")
    parser.add_argument("--experiments", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args(argv)
    problems, lines = check(args.results_dir, args.campaign, args.experiments, args.cycles)
    for line in lines:
        print(f"check_quickstart: {line}")
    if problems:
        for problem in problems:
            print(f"check_quickstart: FAILED: {problem}", file=sys.stderr)
        return 1
    print(f"check_quickstart: OK: {args.experiments} experiments x {args.cycles} cycles, intervals, report.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
