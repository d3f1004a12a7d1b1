"""The campaign run: what a campaign item runs (``CampaignItem``) and the run itself (``LemRun``),
created by ``create_run`` in the first configure step and kept as ``LemSession.run`` (plugin/session.py)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.config import (
    CampaignConfig,
    CampaignError,
    CampaignPlan,
    Experiment,
    ExperimentConfig,
    load_plan,
    sharding,
)
from pytest_llenergy.plugin.options import resolve, resolve_layer
from pytest_llenergy.results.store import RunDirectory


@dataclass(frozen=True)
class CampaignItem:
    """What a campaign test item runs: one experiment in one cycle."""

    experiment: Experiment
    cycle: int
    index: int
    experiments_total: int
    cycles_total: int

    @property
    def config(self) -> ExperimentConfig:
        return self.experiment.config

    @property
    def id(self) -> str:
        return f"c{self.cycle}-{self.experiment.id}"

    def __repr__(self) -> str:
        return f"CampaignItem({self.id})"


@dataclass
class LemRun:
    """One campaign run: the plan, the effective order/seed/cycles and the run directory."""

    plan: CampaignPlan
    order: str
    seed: int
    seed_drawn: bool
    cycles: int
    run_id: str
    run_dir: RunDirectory
    is_worker: bool
    done: frozenset[str] = frozenset()
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.plan.campaign.name

    @property
    def results_root(self) -> Path:
        return self.run_dir.path.parent.parent

    def use_run_id(self, run_id: str) -> None:
        """Continue an earlier run: same id, same directory."""
        self.run_id = run_id
        self.run_dir = RunDirectory(self.results_root / self.name / run_id)

    def items(self) -> list[CampaignItem]:
        """Every (experiment, cycle) pair, in expansion order (ordering happens later)."""
        total = len(self.plan.experiments)
        return [
            CampaignItem(exp, cycle, index, total, self.cycles)
            for cycle in range(1, self.cycles + 1)
            for index, exp in enumerate(self.plan.experiments, start=1)
        ]


def _new_run_id() -> str:
    return dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S") + "-" + secrets.token_hex(2)


def _results_root(config: pytest.Config, campaign: CampaignConfig, source: str) -> Path:
    """``--lem-results-dir`` (or its ini twin) as given, relative to the invocation directory;
    the campaign's ``results_dir`` only inside the rootdir."""
    value, layer = resolve_layer(config, "lem_results_dir", campaign)
    if layer in ("command line", "ini"):
        path = Path(value)
        return path if path.is_absolute() else Path(config.invocation_params.dir) / path
    campaign_dir = str(value)
    root = config.rootpath.resolve()
    path = (root / campaign_dir).resolve()
    if path != root and root not in path.parents:
        raise pytest.UsageError(
            f"llenergy: {source}: results_dir: {campaign_dir!r} resolves to {path}, outside {root} (symlink?)"
        )
    return path


def shard(experiments: list[Experiment], spec: str | None) -> list[Experiment]:
    """``K/N`` (validated by the option's parser): shard K of N, balanced by predicted cost, every
    cycle of an experiment on one shard."""
    if not spec:
        return experiments
    return sharding.select(experiments, sharding.ShardSpec.parse(spec))


def _load(config: pytest.Config, path: str) -> CampaignPlan:
    """The expanded plan, after the user's hook and sharding; usage errors for bad files."""
    campaign_path = Path(path)
    if not campaign_path.is_absolute():
        base = Path(config.invocation_params.dir)
        campaign_path = base / campaign_path if (base / campaign_path).exists() else config.rootpath / campaign_path
    try:
        plan = load_plan(campaign_path)
    except CampaignError as exc:
        raise pytest.UsageError(f"llenergy: {exc}") from None
    plan.source = str(campaign_path)
    config.hook.pytest_lem_modify_experiments(config=config, experiments=plan.experiments)
    plan.experiments = shard(plan.experiments, resolve(config, "lem_shard"))
    return plan


def _identity(config: pytest.Config, plan: CampaignPlan) -> tuple[int, bool, str, Path]:
    """Seed (and whether it was drawn), run id and results root: the controller decides them,
    workers receive them through ``workerinput``."""
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None:
        return (worker_input["lem_seed"], worker_input["lem_seed_drawn"], worker_input["lem_run_id"],
                Path(worker_input["lem_results_root"]))
    seed = resolve(config, "lem_seed", plan.campaign)
    drawn = seed is None or bool(config.getoption("lem_seed_drawn"))
    seed = secrets.randbelow(2**31) if seed is None else seed
    run_id = config.getoption("lem_run_id") or _new_run_id()
    return seed, drawn, run_id, _results_root(config, plan.campaign, plan.source)


def create_run(config: pytest.Config) -> LemRun | None:
    """Load the campaign named by ``--lem-campaign`` / ``lem_campaign``; None when there is none."""
    path = resolve(config, "lem_campaign") or config.hook.pytest_lem_default_campaign(config=config)
    if not path:
        return None
    plan = _load(config, path)
    campaign = plan.campaign
    order = resolve(config, "lem_order", campaign)
    seed, drawn, run_id, results_root = _identity(config, plan)
    cycles = resolve(config, "lem_cycles", campaign)
    cycles = cycles if isinstance(cycles, int) else cycles.max
    worker_input = getattr(config, "workerinput", None)
    done = frozenset(worker_input.get("lem_done", ())) if worker_input is not None else frozenset()
    subordinate = worker_input is not None or bool(config.getoption("lem_dispatched"))
    run = LemRun(plan, order, seed, drawn, cycles, run_id, RunDirectory(results_root / campaign.name / run_id),
                 subordinate, done)
    run.extras["campaign_arg"] = str(path)
    return run
