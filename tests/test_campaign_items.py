"""A campaign YAML becomes parametrised, ordered test items."""

from __future__ import annotations

import json

import pytest
from campaigns import collected_ids, write_suite

GRID = """
name: grid
cycles: 2
defaults:
  model: {name: gpt2, weights: random}
  workload: {num_prompts: 2, input_tokens: 4, output_tokens: 2}
  transformers: {attn_implementation: sdpa}
grid:
  backends: [transformers, vllm, tensorrt]
  models: [gpt2, smollm2-135m]
  shared: {precision: [float32, bfloat16], workload.batch_size: [1, 8]}
  backend_overrides:
    transformers: {attn_implementation: [sdpa, eager]}
    vllm: {max_num_seqs: [8, 64]}
"""


class TestGridExpansion:
    def test_grid_with_overrides_counts_items_per_backend(self, pytester):
        write_suite(pytester, GRID)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q")
        ids = collected_ids(result)
        # transformers 2x2x2x2, vllm 2x2x2x2, tensorrt 2x1x2 (float32 dropped): 36 experiments x 2 cycles
        assert len(ids) == 72
        assert sum(i.startswith("c1-transformers-") for i in ids) == 16
        assert sum(i.startswith("c1-vllm-") for i in ids) == 16
        assert sum(i.startswith("c1-tensorrt-") for i in ids) == 4

    def test_grid_without_overrides(self, pytester):
        write_suite(pytester, """
            name: plain
            defaults: {model: gpt2}
            grid: {shared: {workload.batch_size: [1, 2, 4]}}
        """)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q")
        assert len(collected_ids(result)) == 3

    @pytest.mark.slow
    def test_overrides_do_not_leak_into_other_backends(self, pytester):
        write_suite(pytester, GRID)
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "1")
        files = list((pytester.path / "lem-results" / "grid").glob("*/experiments/*.json"))
        configs = [json.loads(f.read_text())["config"] for f in files]
        assert all(c["transformers"] is None for c in configs if c["backend"] != "transformers")
        assert {c["vllm"]["max_num_seqs"] for c in configs if c["backend"] == "vllm"} == {8, 64}

    def test_invalid_points_are_dropped_with_count_and_reason(self, pytester):
        write_suite(pytester, GRID)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q")
        result.stdout.fnmatch_lines(["llenergy: 4 dropped: TensorRT-LLM does not run float32*(first: backend=tensorrt*"])

    def test_identical_effective_configs_are_deduplicated(self, pytester):
        write_suite(pytester, """
            name: dups
            defaults: {model: gpt2, precision: float32}
            grid: {shared: {precision: [float32, float32], workload.batch_size: [1]}}
            experiments:
              - {workload: {batch_size: 1}}
        """)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q")
        assert len(collected_ids(result)) == 1
        result.stdout.fnmatch_lines(["llenergy: 2 duplicate grid points merged*"])

    def test_explicit_experiments_merge_over_defaults(self, pytester):
        write_suite(pytester, """
            name: explicit
            defaults: {model: {name: gpt2, weights: random}, workload: {batch_size: 2}}
            experiments:
              - {name: eager-baseline, transformers: {attn_implementation: eager}}
              - {precision: bfloat16}
        """)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q")
        ids = collected_ids(result)
        assert len(ids) == 2
        assert any(i.startswith("c1-eager-baseline-") for i in ids)
        assert any(i.startswith("c1-transformers-gpt2-bs2-bf16-") for i in ids)


class TestIds:
    def test_ids_are_stable_across_runs_and_readable(self, pytester):
        write_suite(pytester, GRID)
        first = collected_ids(pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q"))
        second = collected_ids(pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q"))
        assert first == second
        assert "c2-transformers-gpt2-bs8-bf16-" in " ".join(first)

    def test_id_is_a_function_of_the_experiment_alone(self):
        from pytest_llenergy.config import ExperimentConfig, experiment_id

        config = ExperimentConfig(model="gpt2", precision="bfloat16", workload={"batch_size": 8})
        assert experiment_id(config) == experiment_id(ExperimentConfig.model_validate(config.model_dump()))
        assert experiment_id(config).startswith("transformers-gpt2-bs8-bf16-")
        other = ExperimentConfig(model="gpt2", precision="bfloat16", workload={"batch_size": 8, "seed": 1})
        assert experiment_id(other) != experiment_id(config)


ORDER_CAMPAIGN = """
name: order
cycles: 2
seed: 11
defaults: {model: gpt2}
grid: {shared: {workload.batch_size: [1, 2, 3]}}
"""


def _order(pytester, *args):
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q", *args)
    return [(i.split("-")[0], i.split("-bs")[1][0]) for i in collected_ids(result)]


class TestOrdering:
    def test_interleaved_runs_cycle_by_cycle(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN)
        assert _order(pytester, "--lem-order", "interleaved") == [
            ("c1", "1"), ("c1", "2"), ("c1", "3"), ("c2", "1"), ("c2", "2"), ("c2", "3")]

    def test_grouped_runs_all_cycles_of_each_experiment(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN)
        assert _order(pytester, "--lem-order", "grouped") == [
            ("c1", "1"), ("c2", "1"), ("c1", "2"), ("c2", "2"), ("c1", "3"), ("c2", "3")]

    @pytest.mark.slow
    def test_shuffled_is_a_fresh_permutation_per_cycle_and_deterministic(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN.replace("cycles: 2", "cycles: 6"))
        first = _order(pytester, "--lem-order", "shuffled", "--lem-seed", "5")
        assert first == _order(pytester, "--lem-order", "shuffled", "--lem-seed", "5")
        assert first != _order(pytester, "--lem-order", "shuffled", "--lem-seed", "6")
        cycles = [[bs for c, bs in first if c == f"c{k}"] for k in range(1, 7)]
        assert all(sorted(c) == ["1", "2", "3"] for c in cycles)
        assert len({tuple(c) for c in cycles}) > 1

    def test_shuffled_without_seed_draws_and_prints_one(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN.replace("seed: 11", "order: shuffled"))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only")
        result.stdout.fnmatch_lines(["*order shuffled, seed * (drawn; pass --lem-seed * to repeat)"])

    def test_non_campaign_tests_keep_their_place(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN, test="""
            def test_first(): pass
            def test_inference(lem_experiment): pass
            def test_last(): pass
        """)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q", "--lem-order", "grouped")
        names = [line for line in result.outlines if "::" in line]
        assert names[0].endswith("test_first") and names[-1].endswith("test_last")

    def test_cycles_option_overrides_campaign(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN)
        assert len(_order(pytester, "--lem-cycles", "4")) == 12

    def test_ini_twin_sets_the_campaign(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN)
        pytester.makeini("[pytest]\nlem_campaign = campaign.yaml\nlem_order = grouped\n")
        result = pytester.runpytest("--collect-only", "-q")
        assert [i[:2] for i in collected_ids(result)][:2] == ["c1", "c2"]


class TestHeaderAndRun:
    def test_header_shows_campaign_size_order_and_seed(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only")
        result.stdout.fnmatch_lines(["llenergy: campaign order (campaign.yaml): 3 experiments x 2 cycles = 6 items, order interleaved, seed 11"])

    def test_each_item_writes_one_result_file(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml")
        result.assert_outcomes(passed=6)
        files = sorted((pytester.path / "lem-results" / "order").glob("*/experiments/*.json"))
        assert len(files) == 6
        data = json.loads(files[0].read_text())
        assert data["cycle"] in (1, 2) and data["output_tokens"] == 8 * 16 and data["tokens_per_s"] > 0
        assert data["experiment_id"] in data["item_id"]

    def test_without_campaign_campaign_tests_skip_with_reason(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN)
        result = pytester.runpytest("-rs")
        result.stdout.fnmatch_lines(["*no campaign: pass --lem-campaign PATH*"])

    @pytest.mark.slow
    @pytest.mark.requires("xdist")
    @pytest.mark.skipif("not __import__('importlib').util.find_spec('xdist')", reason="pytest-xdist is not installed")
    def test_collection_is_identical_under_xdist(self, pytester):
        write_suite(pytester, ORDER_CAMPAIGN.replace("seed: 11", "order: shuffled"))
        result = pytester.runpytest_subprocess("--lem-campaign", "campaign.yaml", "-n", "2", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=6)
        assert len(list((pytester.path / "lem-results" / "order").glob("*/experiments/*.json"))) == 6
        assert len(list((pytester.path / "lem-results" / "order").iterdir())) == 1


@pytest.mark.slow
def test_shards_partition_the_experiments(pytester):
    write_suite(pytester, ORDER_CAMPAIGN)
    shards = [set(collected_ids(pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q",
                                                  "--lem-shard", f"{k}/2"))) for k in (1, 2)]
    everything = set(collected_ids(pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q")))
    assert shards[0] and shards[1] and not shards[0] & shards[1] and shards[0] | shards[1] == everything
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-shard", "3/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
