"""First-hour findings of issue 26 that are about what the terminal tells a new user."""

from __future__ import annotations

from pathlib import Path

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


GRID = """
name: ids
defaults: {model: {name: tiny-llama, weights: random}}
grid:
  backends: [transformers, vllm]
  shared: {workload.batch_size: [1, 2], workload.output_tokens: [16], decoder.temperature: [0.0, 0.7]}
  backend_overrides:
    transformers: {attn_implementation: [sdpa, eager], use_cache: [true]}
"""


def test_grid_ids_spell_out_the_varied_dimensions(tmp_path):
    """Finding 14: sdpa and eager points differ in more than their hash; dimensions with one value
    (output_tokens, use_cache) and another backend's section stay out."""
    from pytest_llenergy.config import load_plan

    (tmp_path / "c.yaml").write_text(GRID)
    ids = [e.id for e in load_plan(tmp_path / "c.yaml").experiments]
    assert len(ids) == 12
    assert sum("-fp32-temperature-0.0-sdpa-" in i for i in ids) == 2
    assert sum("-fp32-temperature-0.7-eager-" in i for i in ids) == 2
    assert all(i.startswith("transformers-") == ("sdpa" in i or "eager" in i) for i in ids)
    assert not any("output-tokens" in i or "use-cache" in i for i in ids)
    assert "vllm-tiny-llama-bs2-fp32-temperature-0.7-" in " ".join(ids)


def test_ids_without_varied_extra_dimensions_are_unchanged(tmp_path):
    """Resume keys: a campaign varying only batch size (the quickstart) keeps the ids it always had."""
    from pytest_llenergy.config import load_plan
    from pytest_llenergy.config.ids import config_hash

    plan = load_plan(Path(__file__).parents[1] / "energy_suites" / "campaigns" / "quickstart.yaml")
    for exp in plan.experiments:
        bs = exp.config.workload.batch_size
        assert exp.id == f"transformers-tiny-llama-bs{bs}-fp32-{config_hash(exp.config)}"
