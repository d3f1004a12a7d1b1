"""Cost-balanced deterministic sharding, the Slurm job scripts, placements and mixed-hardware merges."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from campaigns import write_suite

from pytest_llenergy.cli.slurm import SlurmError, SlurmRequest, plan_submission, submit
from pytest_llenergy.config import load_plan
from pytest_llenergy.config.sharding import (
    ShardSpec,
    ShardSpecError,
    assign,
    model_scale,
    predicted_cost,
    select,
)
from pytest_llenergy.results.placement import mixed_hardware

CAMPAIGN = """
name: shardy
cycles: 3
seed: 5
defaults:
  backend: transformers
  model: {name: tiny-gpt2, weights: random}
  workload: {num_prompts: 4, input_tokens: 16, output_tokens: 8, batch_size: 1}
grid:
  shared:
    workload.num_prompts: [1, 2, 4, 8, 16, 32]
"""


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(CAMPAIGN)
    return path


def test_model_scale_reads_sizes_from_names() -> None:
    assert model_scale("llama-3.1-8b") == 8 and model_scale("qwen2.5-0.5b") == 0.5
    assert model_scale("smollm2-135m") == pytest.approx(0.135) and model_scale("gpt2") == 1.0


def test_split_balances_cost_and_keeps_every_experiment_once(campaign: Path) -> None:
    experiments = load_plan(campaign).experiments
    shards = assign(experiments, 2)
    ids = [e.id for s in shards for e in s]
    assert sorted(ids) == sorted(e.id for e in experiments)  # each experiment (all its cycles) once
    loads = [sum(predicted_cost(e, 3) for e in s) for s in shards]
    # prompts 1..32 doubling: LPT gives 32 | 16+8+4+2+1 = 31, where every-N-th would give 32+8+2 vs 16+4+1
    assert sorted(loads) == sorted([32 * 24 * 3, 31 * 24 * 3])


def test_split_is_the_same_on_every_shard_and_order_independent(campaign: Path) -> None:
    experiments = load_plan(campaign).experiments
    first = [[e.id for e in select(experiments, ShardSpec(k, 3))] for k in (1, 2, 3)]
    again = [[e.id for e in select(list(reversed(experiments)), ShardSpec(k, 3))] for k in (1, 2, 3)]
    assert [sorted(s) for s in first] == [sorted(s) for s in again]


@pytest.mark.parametrize("text", ["0/2", "3/2", "x", "1/2/3"])
def test_bad_shard_specs_are_refused(text: str) -> None:
    with pytest.raises(ShardSpecError):
        ShardSpec.parse(text)


def test_plan_writes_array_and_merge_scripts(campaign: Path, tmp_path: Path) -> None:
    req = SlurmRequest(campaign=campaign, nodes=2, gpus_per_node=4, results_root=tmp_path / "res",
                       pytest_args=["energy_suites/", "-q"], partition="gpu", time_limit="01:00:00", workdir=tmp_path)
    plan = plan_submission(req, run_id="rid")
    assert plan.shards == 2 and plan.seed == 5
    array = plan.array_script
    for line in ("#SBATCH --array=1-2", "#SBATCH --exclusive", "#SBATCH --gres=gpu:4", "#SBATCH --requeue",
                 "#SBATCH --partition=gpu", "#SBATCH --time=01:00:00", "--lem-resume", "-n auto",
                 "--lem-run-id rid", "--lem-seed 5", '--lem-shard "$shard"', f"--lem-results-dir {tmp_path / 'res'}/shard-"):
        assert line in array, line
    assert f"{tmp_path / 'res'}/shard-*/shardy/rid" in plan.merge_script and "report" in plan.merge_script
    cpu = plan_submission(SlurmRequest(campaign=campaign, nodes=9, gpus_per_node=0, exclusive=False,
                                       results_root=tmp_path, workdir=tmp_path))
    assert cpu.shards == 6  # never more shards than experiments
    assert "--gres" not in cpu.array_script and "--exclusive" not in cpu.array_script and "-n auto" not in cpu.array_script


def test_submit_chains_the_merge_after_the_array(campaign: Path, tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def fake(cmd):
        calls.append(list(cmd))
        return subprocess.CompletedProcess(cmd, 0, stdout=f"{100 + len(calls)};cluster\n", stderr="")

    plan = plan_submission(SlurmRequest(campaign=campaign, nodes=2, results_root=tmp_path, workdir=tmp_path))
    assert submit(plan, runner=fake) == ("101", "102")
    assert calls[1][2] == "--dependency=afterany:101" and calls[0][-1].endswith("-array.sbatch")

    def refusing(cmd):
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="sbatch: error: invalid partition\n")

    with pytest.raises(SlurmError, match="invalid partition"):
        submit(plan, runner=refusing)


def test_bad_campaign_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncycles: -1\n")
    with pytest.raises(SlurmError, match="cycles"):
        plan_submission(SlurmRequest(campaign=bad, workdir=tmp_path))


def test_cli_dry_run_prints_the_split(campaign: Path, tmp_path: Path, capsys) -> None:
    from pytest_llenergy.cli import main

    code = main(["slurm", "submit", str(campaign), "--nodes", "2", "--results-root", str(tmp_path / "r"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and "shard 1/2" in out and "shard 2/2" in out and "not submitted" in out
    assert len(list((tmp_path / "r" / "slurm").glob("*.sbatch"))) == 2


def _env(run_dir: Path, gpu: str, driver: str, host: str) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "environment.json").write_text(json.dumps(
        {"host": host, "gpu": {"driver_version": driver, "devices": [{"name": gpu}]}}))


def test_mixed_hardware_is_flagged(tmp_path: Path) -> None:
    _env(tmp_path / "a", "NVIDIA H200", "580.1", "n1")
    _env(tmp_path / "b", "NVIDIA H200", "580.1", "n2")
    assert mixed_hardware([tmp_path / "a", tmp_path / "b"]) is None
    _env(tmp_path / "c", "NVIDIA H100 80GB HBM3", "580.1", "n3")
    message = mixed_hardware([tmp_path / "a", tmp_path / "c"])
    assert message and "H100" in message and "H200" in message and "n3" in message


@pytest.mark.slow
def test_requeued_shard_reruns_only_what_it_has_not_finished(pytester: pytest.Pytester) -> None:
    """A requeued array task on another node has no pytest cache: the files on disk decide."""
    write_suite(pytester, CAMPAIGN.replace("[1, 2, 4, 8, 16, 32]", "[1, 2, 4, 8]"))
    args = ("--lem-campaign", "campaign.yaml", "--lem-shard", "1/2", "--lem-run-id", "rid", "--lem-resume",
            "-p", "no:cacheprovider", "--lem-energy-source", "estimate")
    first = pytester.runpytest(*args)
    first.assert_outcomes(passed=3)  # LPT: shard 1 gets the 8-prompt experiment (8 vs 4+2+1), 3 cycles
    files = sorted((pytester.path / "lem-results" / "shardy" / "rid" / "experiments").glob("*.json"))
    assert len(files) == 3
    files[0].unlink()  # as if the node died while that item ran
    again = pytester.runpytest(*args)
    again.assert_outcomes(passed=1)
    assert "no saved state; run rid has 2 finished item(s) on disk, 1 to run" in again.stdout.str()
