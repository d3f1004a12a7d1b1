"""Expand a campaign into its sorted, de-duplicated experiments and record what was dropped."""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from pytest_llenergy.config.campaign import CampaignConfig
from pytest_llenergy.config.errors import CampaignError, problems_from_validation
from pytest_llenergy.config.experiment import ExperimentConfig
from pytest_llenergy.config.ids import experiment_id, path_value
from pytest_llenergy.config.paths import check_path, deep_merge, set_path
from pytest_llenergy.config.search import reference_to_add
from pytest_llenergy.config.sections import BACKEND_SECTIONS


@dataclass(frozen=True)
class Experiment:
    """One experiment of a campaign: its stable id and effective config."""

    id: str
    config: ExperimentConfig


@dataclass
class CampaignPlan:
    """Everything collection needs: the campaign, its experiments and the expansion report."""

    campaign: CampaignConfig
    source: str
    file_hash: str
    experiments: list[Experiment]
    dropped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: int = 0

    @property
    def base_dir(self) -> str:
        """The campaign file's folder: relative paths in the campaign resolve against it."""
        from pathlib import Path

        return str(Path(self.source).resolve().parent)

    def dropped_summary(self) -> list[str]:
        """One line per distinct reason: count and the first point it dropped."""
        by_reason: dict[str, list[str]] = {}
        for point, reason in self.dropped:
            by_reason.setdefault(reason, []).append(point)
        return [f"{len(points)} dropped: {reason} (first: {points[0]})" for reason, points in by_reason.items()]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _model_dict(value: Any) -> dict[str, Any]:
    return {"name": value} if isinstance(value, str) else dict(value or {})


def _validate_defaults(campaign: CampaignConfig, source: str) -> None:
    problems: list[str] = []
    plain = {k: v for k, v in campaign.defaults.items() if k not in BACKEND_SECTIONS}
    try:
        ExperimentConfig.model_validate(plain)
    except ValidationError as exc:
        problems += problems_from_validation(exc, ("defaults",))
    for name, model in BACKEND_SECTIONS.items():
        if name in campaign.defaults:
            try:
                model.model_validate(campaign.defaults[name])
            except ValidationError as exc:
                problems += problems_from_validation(exc, ("defaults", name))
    if problems:
        raise CampaignError(source, problems)


def _validate_grid_paths(campaign: CampaignConfig, source: str) -> None:
    grid = campaign.grid
    if grid is None:
        return
    problems = []
    for path in grid.shared:
        problem = check_path(ExperimentConfig, path)
        if problem is None and path.split(".")[0] in ("backend", "model", "name"):
            problem = "set backends and models with grid.backends and grid.models"
        if problem:
            problems.append(f"grid.shared.{path}: {problem}")
    backends = grid.backends or [campaign.defaults.get("backend", "transformers")]
    from pytest_llenergy.config.registry import known_backends

    for i, backend in enumerate(grid.backends or []):
        if backend not in known_backends():
            problems.append(f"grid.backends[{i}]: unknown backend {backend!r} (known: {', '.join(sorted(known_backends()))})")
    for backend, overrides in grid.backend_overrides.items():
        if backend not in BACKEND_SECTIONS:
            problems.append(f"grid.backend_overrides.{backend}: unknown backend")
            continue
        if backend not in backends:
            problems.append(f"grid.backend_overrides.{backend}: backend is not in grid.backends")
        for path in overrides:
            problem = check_path(BACKEND_SECTIONS[backend], path)
            if problem:
                problems.append(f"grid.backend_overrides.{backend}.{path}: {problem}")
    if problems:
        raise CampaignError(source, problems)


def _row_base(defaults: dict[str, Any], backend: str) -> dict[str, Any]:
    """Defaults for one backend: other backends' sections left out."""
    return copy.deepcopy({k: v for k, v in defaults.items() if k not in BACKEND_SECTIONS or k == backend})


def _grid_points(campaign: CampaignConfig) -> list[tuple[str, dict[str, Any]]]:
    grid = campaign.grid
    assert grid is not None
    defaults = campaign.defaults
    backends = grid.backends or [defaults.get("backend", "transformers")]
    models: list[Any] = list(grid.models) if grid.models else [defaults.get("model")]
    points = []
    for backend in backends:
        axes = [(path, _as_list(v)) for path, v in sorted(grid.shared.items())]
        overrides = grid.backend_overrides.get(backend, {})
        axes += [(f"{backend}.{path}", _as_list(v)) for path, v in sorted(overrides.items())]
        for model in models:
            for combo in itertools.product(*(values for _, values in axes)):
                row = _row_base(defaults, backend)
                row["backend"] = backend
                if model is not None:
                    row["model"] = deep_merge(_model_dict(defaults.get("model")), _model_dict(model))
                for (path, _), value in zip(axes, combo):
                    set_path(row, path, value)
                label = ", ".join([f"backend={backend}", f"model={_model_dict(model).get('name')}"] + [f"{p}={v}" for (p, _), v in zip(axes, combo)])
                points.append((label, row))
    return points


def _explicit_rows(campaign: CampaignConfig) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for index, entry in enumerate(campaign.experiments):
        backend = entry.get("backend", campaign.defaults.get("backend", "transformers"))
        rows.append((index, deep_merge(_row_base(campaign.defaults, backend), entry)))
    return rows


def expand(campaign: CampaignConfig, source: str = "<campaign>", file_hash: str = "") -> CampaignPlan:
    """Validate and expand ``campaign`` into a plan; usage mistakes raise CampaignError."""
    _validate_defaults(campaign, source)
    _validate_grid_paths(campaign, source)
    configs: list[ExperimentConfig] = []
    dropped: list[tuple[str, str]] = []
    problems: list[str] = []
    names = [str(e["name"]) for e in campaign.experiments if isinstance(e.get("name"), str)]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"experiments: duplicate experiment name {name!r}")
    for index, row in _explicit_rows(campaign):
        try:
            configs.append(ExperimentConfig.model_validate(row))
        except ValidationError as exc:
            problems += problems_from_validation(exc, ("experiments", index))
    if problems:
        raise CampaignError(source, problems)
    if campaign.grid is not None:
        for label, row in _grid_points(campaign):
            try:
                configs.append(ExperimentConfig.model_validate(row))
            except ValidationError as exc:
                dropped.append((label, problems_from_validation(exc)[0]))
    elif not campaign.experiments:
        try:
            configs.append(ExperimentConfig.model_validate(_row_base(campaign.defaults, campaign.defaults.get("backend", "transformers"))))
        except ValidationError as exc:
            raise CampaignError(source, problems_from_validation(exc, ("defaults",))) from None
    return _finish(campaign, source, file_hash, configs, dropped)


def varied_paths(campaign: CampaignConfig, configs: list[ExperimentConfig]) -> list[str]:
    """The grid's paths (shared and per backend) that take more than one value among ``configs``."""
    grid = campaign.grid
    if grid is None:
        return []
    paths = sorted(grid.shared) + sorted(f"{b}.{p}" for b, o in grid.backend_overrides.items() for p in o)
    dumps = [(c.backend, c.model_dump(mode="json", exclude={"name"})) for c in configs]
    found = []
    for path in dict.fromkeys(paths):
        section = path.split(".", 1)[0]
        values = {json.dumps(path_value(d, path), sort_keys=True) for backend, d in dumps
                  if section not in BACKEND_SECTIONS or section == backend}  # a section only its backend has
        if len(values) > 1:
            found.append(path)
    return found


def _finish(campaign: CampaignConfig, source: str, file_hash: str, configs: list[ExperimentConfig],
            dropped: list[tuple[str, str]]) -> CampaignPlan:
    missing_model = [c for c in configs if c.model is None]
    if missing_model:
        raise CampaignError(source, ["no model: set defaults.model, grid.models or a model per experiment"])
    by_id: dict[str, Experiment] = {}
    duplicates = 0
    varied = varied_paths(campaign, configs)
    for config in configs:
        exp = Experiment(experiment_id(config, varied), config)
        if exp.id in by_id:
            duplicates += 1
            continue
        by_id[exp.id] = exp
    experiments = sorted(by_id.values(), key=lambda e: e.id)
    if not experiments:
        reasons = "; ".join(f"{r}" for r in {r for _, r in dropped}) or "nothing to run"
        raise CampaignError(source, [f"every experiment was dropped: {reasons}"])
    reference, problems = reference_to_add(campaign, experiments)  # a search's reference joins the race
    if problems:
        raise CampaignError(source, problems)
    if reference is not None:
        experiments = sorted([*experiments, Experiment(experiment_id(reference), reference)], key=lambda e: e.id)
    return CampaignPlan(campaign, source, file_hash, experiments, dropped, duplicates)
