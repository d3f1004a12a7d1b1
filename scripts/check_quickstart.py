"""Check the CI quickstart run's output, so that the step cannot pass with items skipped or no statistics.

    python scripts/check_quickstart.py RESULTS_DIR [--campaign quickstart] [--experiments 2] [--cycles 3]

Passes (exit 0, one line per experiment) when RESULTS_DIR/<campaign>/ holds exactly one run whose
manifest lists every planned item as passed (none skipped, failed or pending), whose summary.json
has the expected number of experiments, and whose report.html exists. Every headline metric of
every experiment (raw energy, energy per output token and per token, throughput, mean power, and
the baseline-adjusted figures where the source measured an idle baseline) must have n = cycles and
a finite, ordered interval (ci_low <= mean <= ci_high, ci_low < ci_high) around a positive mean;
per-token energy must agree with energy / output tokens; adjusted energy must lie below raw energy
by the measured idle power x duration (adjusted figures without a baseline, or a baseline without
adjusted figures, fail). Otherwise exits 1 naming each problem.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

RAW = ("energy_j", "energy_per_output_token_j", "energy_per_token_j", "tokens_per_s", "mean_power_w")
ADJUSTED = ("energy_adjusted_j", "adjusted_energy_per_output_token_j", "adjusted_energy_per_token_j")
HEADLINE = ("adjusted_energy_per_output_token_j", "energy_per_output_token_j")  # the line printed per experiment
PER_TOKEN_TOLERANCE = 0.05  # mean of per-cycle ratios against the ratio of means (equal with fixed token counts)
BASELINE_TOLERANCE = 0.15  # (raw - adjusted) / duration against the measured idle power (the item outlasts its window)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _interval_problems(name: str, metric: str, block: dict, cycles: int) -> list[str]:
    """n = cycles, a finite positive mean inside a finite interval of non-zero width."""
    problems = []
    if block.get("n") != cycles:
        problems.append(f"{name}: {metric} n = {block.get('n')}, expected {cycles}")
    low, mean, high = block.get("ci_low"), block.get("mean"), block.get("ci_high")
    if _finite(mean) and mean <= 0:
        problems.append(f"{name}: {metric} mean = {mean}, expected > 0")
    if not (_finite(low) and _finite(mean) and _finite(high) and low <= mean <= high and low < high):
        problems.append(f"{name}: {metric} has no interval around its mean (ci_low={low}, mean={mean}, ci_high={high})")
    return problems


def _mean(stats: dict, metric: str) -> float | None:
    value = stats.get(metric, {}).get("mean")
    return float(value) if _finite(value) else None


def _consistency_problems(name: str, entry: dict, stats: dict) -> list[str]:
    """Per-token figures against energy / tokens; adjusted figures against raw energy and the idle power."""
    problems = []
    tokens = entry.get("output_tokens_mean")
    for energy, per_token in (("energy_j", "energy_per_output_token_j"), ("energy_adjusted_j", "adjusted_energy_per_output_token_j")):
        e, t = _mean(stats, energy), _mean(stats, per_token)
        if e and t is not None and _finite(tokens) and tokens > 0 and abs(t * tokens / e - 1) > PER_TOKEN_TOLERANCE:
            problems.append(f"{name}: {per_token} {t:.4g} J x {tokens:g} output tokens is not {energy} {e:.4g} J")
    e, t_all, t_out = _mean(stats, "energy_j"), _mean(stats, "energy_per_token_j"), _mean(stats, "energy_per_output_token_j")
    if t_all is not None and t_out is not None and t_all > t_out:
        problems.append(f"{name}: energy_per_token_j {t_all:.4g} > energy_per_output_token_j {t_out:.4g} (all tokens include the output)")
    adjusted = [m for m in ADJUSTED if m in stats]
    baseline = entry.get("baseline_power_w_mean")
    if not adjusted:
        if _finite(baseline):
            problems.append(f"{name}: an idle baseline ({baseline:.4g} W) was measured but there are no adjusted figures")
        return problems
    if len(adjusted) != len(ADJUSTED):
        problems.append(f"{name}: adjusted figures incomplete: {', '.join(sorted(set(ADJUSTED) - set(adjusted)))} missing")
    if not (_finite(baseline) and baseline > 0):
        problems.append(f"{name}: adjusted figures without a measured idle baseline (baseline_power_w_mean={baseline})")
        return problems
    a, duration = _mean(stats, "energy_adjusted_j"), entry.get("duration_s_mean")
    if not e or a is None or e < 0:
        return problems
    if a >= e:
        problems.append(f"{name}: adjusted energy {a:.4g} J is not below raw energy {e:.4g} J (idle {baseline:.4g} W)")
    elif _finite(duration) and duration > 0:
        implied = (e - a) / duration
        if abs(implied / baseline - 1) > BASELINE_TOLERANCE:
            problems.append(f"{name}: raw {e:.4g} J - adjusted {a:.4g} J over {duration:.4g} s is {implied:.4g} W of idle power, "
                            f"measured {baseline:.4g} W")
    return problems


def _experiment_problems(entry: dict, cycles: int) -> list[str]:
    name = entry.get("experiment_id", "?")
    stats = entry.get("stats") or {}
    missing = [m for m in RAW if m not in stats]
    problems = [f"{name}: no statistics for {', '.join(missing)}"] if missing else []
    for metric in (*RAW, *ADJUSTED):
        if metric in stats:
            problems += _interval_problems(name, metric, stats[metric], cycles)
    return problems + _consistency_problems(name, entry, stats)


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
        metric = next((m for m in HEADLINE if m in entry.get("stats", {})), None)
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
