"""``lem slurm submit``: a campaign as a Slurm job array (one task per shard) plus a dependent merge job.

Each array task runs ``pytest ... --lem-shard K/N`` on one exclusive node, one xdist worker per GPU,
into its own run directory ``<root>/shard-K/<campaign>/<run-id>``, with ``--lem-resume`` so a
requeued task re-runs only what that shard has not finished. The merge job, started after every
task has ended, runs ``lem report`` over the shard directories into ``<root>/merged``. The job
scripts are written under ``<root>/slurm/`` so they can be read, edited and resubmitted by hand.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_llenergy.config import CampaignError, load_plan
from pytest_llenergy.config.sharding import assign


class SlurmError(RuntimeError):
    """sbatch missing or refusing a job; the message says which and why."""


@dataclass
class SlurmRequest:
    """What the user asked for (``lem slurm submit`` arguments)."""

    campaign: Path
    nodes: int = 1
    gpus_per_node: int = 1
    results_root: Path = Path("lem-results/slurm")
    pytest_args: list[str] = field(default_factory=lambda: ["energy_suites/"])
    exclusive: bool = True
    partition: str | None = None
    time_limit: str | None = None
    cpus_per_task: int | None = None
    extra_sbatch: list[str] = field(default_factory=list)
    python: str = sys.executable
    workdir: Path = field(default_factory=Path.cwd)


@dataclass
class SlurmPlan:
    """The two job scripts and where everything will be written."""

    campaign_name: str
    shards: int
    run_id: str
    seed: int
    root: Path
    array_script: str
    merge_script: str
    shard_experiments: list[list[str]]

    @property
    def scripts_dir(self) -> Path:
        return self.root / "slurm"

    def shard_run_dir(self, k: int) -> Path:
        return self.root / f"shard-{k}" / self.campaign_name / self.run_id

    @property
    def merged_dir(self) -> Path:
        return self.root / "merged"


def _sbatch_header(req: SlurmRequest, name: str, output: str) -> list[str]:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}", f"#SBATCH --output={output}",
             f"#SBATCH --chdir={req.workdir}"]
    if req.partition:
        lines.append(f"#SBATCH --partition={req.partition}")
    if req.time_limit:
        lines.append(f"#SBATCH --time={req.time_limit}")
    return lines


def plan_submission(req: SlurmRequest, *, run_id: str | None = None, seed: int | None = None) -> SlurmPlan:
    """Validate the campaign and build both job scripts (nothing is submitted)."""
    try:
        plan = load_plan(req.campaign)
    except CampaignError as exc:
        raise SlurmError(str(exc)) from None
    if req.nodes < 1 or req.gpus_per_node < 0:
        raise SlurmError(f"--nodes must be >= 1 and --gpus-per-node >= 0, got {req.nodes} and {req.gpus_per_node}")
    shards = min(req.nodes, len(plan.experiments))
    if shards < 1:
        raise SlurmError(f"{req.campaign}: the campaign expands to no experiments")
    name = plan.campaign.name
    run_id = run_id or dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S") + "-slurm-" + secrets.token_hex(2)
    seed = plan.campaign.seed if seed is None else seed
    seed = secrets.randbelow(2**31) if seed is None else seed  # one seed for every shard: same order rules
    root = req.results_root if req.results_root.is_absolute() else req.workdir / req.results_root
    split = [[e.id for e in s] for s in assign(plan.experiments, shards)]
    logs = root / "slurm" / "logs"
    head = _sbatch_header(req, f"lem-{name}", str(logs / "%x-%A_%a.out"))
    head += [f"#SBATCH --array=1-{shards}", "#SBATCH --nodes=1", "#SBATCH --ntasks=1", "#SBATCH --requeue"]
    if req.exclusive:
        head.append("#SBATCH --exclusive")
    if req.gpus_per_node > 0:
        head.append(f"#SBATCH --gres=gpu:{req.gpus_per_node}")
    if req.cpus_per_task:
        head.append(f"#SBATCH --cpus-per-task={req.cpus_per_task}")
    head += [f"#SBATCH {opt}" for opt in req.extra_sbatch]
    command = [req.python, "-m", "pytest", *req.pytest_args, "--lem-campaign", str(req.campaign.resolve()),
               "--lem-run-id", run_id, "--lem-seed", str(seed), "--lem-resume"]
    if req.gpus_per_node > 0:
        command += ["-n", "auto"]  # one xdist worker per GPU Slurm gave this task
    quoted = " ".join(shlex.quote(c) for c in command)
    array = "\n".join([*head, "set -euo pipefail",
                       f"shard=\"${{SLURM_ARRAY_TASK_ID}}/{shards}\"",
                       f"exec {quoted} --lem-shard \"$shard\" \\",
                       f"  --lem-results-dir {shlex.quote(str(root))}/shard-\"${{SLURM_ARRAY_TASK_ID}}\"", ""])
    dirs = f"{shlex.quote(str(root))}/shard-*/{shlex.quote(name)}/{shlex.quote(run_id)}"
    lem = [req.python, "-m", "pytest_llenergy.cli"]
    merge = "\n".join([*_sbatch_header(req, f"lem-{name}-merge", str(logs / "%x-%j.out")),
                       "#SBATCH --nodes=1", "#SBATCH --ntasks=1", "set -euo pipefail", "shopt -s nullglob",
                       f"dirs=({dirs})",
                       f'echo "merging ${{#dirs[@]}} of {shards} shard run directories"',
                       f"exec {' '.join(shlex.quote(c) for c in lem)} report \"${{dirs[@]}}\" "
                       f"--out {shlex.quote(str(root / 'merged'))} --seed {seed}", ""])
    return SlurmPlan(name, shards, run_id, seed, root, array, merge, split)


def write_scripts(plan: SlurmPlan) -> tuple[Path, Path]:
    (plan.scripts_dir / "logs").mkdir(parents=True, exist_ok=True)
    array, merge = plan.scripts_dir / f"{plan.run_id}-array.sbatch", plan.scripts_dir / f"{plan.run_id}-merge.sbatch"
    array.write_text(plan.array_script, encoding="utf-8")
    merge.write_text(plan.merge_script, encoding="utf-8")
    return array, merge


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def _sbatch(args: Sequence[str], runner: Runner) -> str:
    try:
        done = runner(["sbatch", "--parsable", *args])
    except FileNotFoundError:
        raise SlurmError("sbatch not found: run this on a Slurm login node (or install slurm-client)") from None
    if done.returncode != 0:
        raise SlurmError(f"sbatch refused the job: {(done.stderr or done.stdout).strip()}")
    return done.stdout.strip().split(";")[0]


def submit(plan: SlurmPlan, runner: Runner = _run) -> tuple[str, str]:
    """Submit the array, then the merge job depending on it; returns both job ids."""
    array, merge = write_scripts(plan)
    array_id = _sbatch([str(array)], runner)
    merge_id = _sbatch([f"--dependency=afterany:{array_id}", str(merge)], runner)
    return array_id, merge_id
