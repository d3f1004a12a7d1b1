"""``lem slurm submit`` against a real Slurm (slurmctld + slurmd on 127.0.0.1, auth none).

Uses the cluster named by ``SLURM_CONF`` when one answers, else starts a private one with
``scripts/slurm_local.sh`` (needs Debian's slurmctld, slurmd and slurm-client, and root for slurmd).
Skips with the reason where neither is possible; CI requires it (``.ci/run``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm_local.sh"
CAMPAIGN = """
name: slurmy
cycles: 2
seed: 7
defaults:
  backend: transformers
  model: {name: tiny-gpt2, weights: random}
  workload: {prompts: synthetic, num_prompts: 2, input_tokens: 8, output_tokens: 4, batch_size: 1}
grid:
  shared: {workload.num_prompts: [2, 4]}
measurement:
  energy_source: replay
  baseline: {duration_s: 0.5}
  warmup: {mode: fixed, iterations: 1}
gaps: {between_experiments: 0, between_cycles: 0}
"""
TEST_FILE = """
def test_inference(lem_experiment, lem_session, lem_result, energy):
    workload = lem_session.prepare(lem_experiment.config.workload)
    with energy.measure("generate") as window:
        stats = lem_session.run(workload)
        window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens)
    lem_result.record_generation(stats)
"""
pytestmark = [pytest.mark.requires_slurm, pytest.mark.requires("slurm"), pytest.mark.slow]


def _answers(env: dict[str, str]) -> bool:
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%a"], env=env, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and "up" in done.stdout


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    if env.get("SLURM_CONF") and _answers(env):
        yield env
        return
    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "sinfo") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"slurm: not installed ({', '.join(missing)} missing; apt-get install slurmctld slurmd slurm-client)")
    if os.geteuid() != 0:
        pytest.skip("slurm: a private cluster needs root (slurmd); set SLURM_CONF to a running one")
    state = tmp_path_factory.mktemp("slurm")
    ports = {"LEM_SLURMCTLD_PORT": "16917", "LEM_SLURMD_PORT": "16918"}
    started = subprocess.run(["bash", str(SCRIPT), "start", str(state)], env={**env, **ports},
                             capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        pytest.fail(f"slurm: could not start a local cluster:\n{started.stdout}{started.stderr}")
    env["SLURM_CONF"] = str(state / "slurm.conf")
    try:
        yield env
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], capture_output=True, timeout=60)


def _wait_for(job: str, env: dict[str, str], timeout: float = 900) -> None:
    """Until Slurm no longer lists the job (an event: the queue empties), bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", job], env=env, capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(1)
    pytest.fail(f"slurm job {job} still queued after {timeout} s")


def test_two_shard_array_measures_each_item_once_and_merges(slurm_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN)
    (tmp_path / "test_suite.py").write_text(TEST_FILE)
    env = {**slurm_env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), slurm_env.get("PYTHONPATH")]))}
    root = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "pytest_llenergy.cli", "slurm", "submit", "campaign.yaml",
                           "--nodes", "2", "--gpus-per-node", "0", "--shared", "--cpus-per-task", "1",
                           "--results-root", str(root), "--", "test_suite.py", "-p", "no:cacheprovider", "-q"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    merge_job = done.stdout.split("merge job ")[1].split()[0]
    _wait_for(merge_job, env)
    logs = "\n".join(p.read_text() for p in sorted((root / "slurm" / "logs").glob("*.out")))
    results = sorted(root.glob("shard-*/slurmy/*/experiments/*.json"))
    keys = [p.stem for p in results]
    assert len(keys) == 4 and len(set(keys)) == 4, logs  # 2 experiments x 2 cycles, each exactly once
    shards = {p.parts[len(root.parts)] for p in results}
    assert shards == {"shard-1", "shard-2"}, logs  # both tasks ran, one experiment each
    summary = json.loads((root / "merged" / "summary.json").read_text())
    assert len(summary["experiments"]) == 2, logs
    for entry in summary["experiments"]:
        assert entry["items"] == 2 and entry["n_passed"] == 2 and entry["stats"]["energy_j"]["n"] == 2
    placements = summary["placements"]
    assert sorted(placements) == sorted({k.split("__c")[0] for k in keys})
    assert all(p["host"] for cycles in placements.values() for p in cycles)
    assert summary["hardware_warning"] is None
