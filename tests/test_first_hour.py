"""First-hour findings of issue 26 that are about what the terminal tells a new user."""

from __future__ import annotations

from campaigns import write_suite

QUICK = """
name: fh
cycles: 2
defaults: {model: {name: tiny-llama, weights: random}}
grid: {shared: {workload.batch_size: [1, 2]}}
measurement: {energy_source: estimate, baseline: {duration_s: 10}}
"""


def test_a_cpu_source_says_the_baseline_and_adaptive_gaps_are_skipped(pytester):
    """Finding 11: the quickstart's baseline and gaps are dropped on the CPU: the header says so."""
    write_suite(pytester, QUICK)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["llenergy: estimate source: the 10 s idle baseline is skipped (no idle power to "
                                 "measure: *); adaptive gaps between experiments and cycles wait 0 s (no GPU to cool)"])
    quiet = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-p", "no:cacheprovider",
                               "--lem-no-baseline", "--lem-gap-experiments", "0")
    quiet.stdout.fnmatch_lines(["llenergy: estimate source: adaptive gaps between cycles wait 0 s (no GPU to cool)"])
    quiet.stdout.no_fnmatch_line("*idle baseline is skipped*")
