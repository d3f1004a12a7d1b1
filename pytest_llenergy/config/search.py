"""The campaign's ``search:`` section: find the energy-optimal configuration under limits, by racing.

A search races the campaign's experiments: every round (one cycle) runs the survivors once more,
interleaved, and drops those that are worse than the best, or break a constraint, with confidence
(``results/search.py`` has the statistics). ``cycles`` is the most rounds; ``reference`` names the
configuration the saving is stated against (default: the campaign's defaults), added to the race
when it is not a point of the grid.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import Field, ValidationError, field_validator, model_validator

from pytest_llenergy.config.base import StrictModel
from pytest_llenergy.config.errors import problems_from_validation
from pytest_llenergy.config.experiment import ExperimentConfig
from pytest_llenergy.config.ids import config_hash, experiment_id
from pytest_llenergy.config.paths import check_path, set_path
from pytest_llenergy.config.sections import BACKEND_SECTIONS
from pytest_llenergy.config.units import parse_duration

# Objectives (always minimised): a result figure per unit of work.
OBJECTIVES = (
    "adjusted_energy_per_output_token", "energy_per_output_token", "adjusted_energy_per_token", "energy_per_token",
    "adjusted_energy_per_request", "energy_per_request",
)
_QUANTILES = ("mean", "p50", "p90", "p95", "p99")
# Constraint metrics, each with its unit in the name (``results/search.py`` reads them from a result).
CONSTRAINT_METRICS = (
    "batch_latency_p95_s", "batch_latency_mean_s",
    *(f"ttft_{q}_ms" for q in _QUANTILES), *(f"itl_{q}_ms" for q in _QUANTILES),
    *(f"e2e_{q}_ms" for q in _QUANTILES if q != "p95"),
    "tokens_per_s", "output_tokens_per_s", "peak_memory_mb", "mean_power_w",
)


class SearchConstraint(StrictModel):
    """A limit on a measured figure: the mean over cycles must stay below `max` (or above `min`)."""

    metric: Literal[CONSTRAINT_METRICS] = Field(  # type: ignore[valid-type]
        description="Figure to limit, unit in the name: batch_latency_p95_s, ttft_p99_ms (streaming or serving), "
                    "itl_p95_ms, e2e_p99_ms (serving), output_tokens_per_s, peak_memory_mb, ...")
    max: float | None = Field(None, gt=0, description="Upper limit, in the metric's unit.")
    min: float | None = Field(None, gt=0, description="Lower limit (a throughput floor), in the metric's unit.")

    @model_validator(mode="after")
    def _one_limit(self) -> SearchConstraint:
        if (self.max is None) == (self.min is None):
            raise ValueError("give exactly one of max or min")
        return self

    @property
    def limit(self) -> float:
        return self.max if self.max is not None else self.min  # type: ignore[return-value]

    @property
    def upper(self) -> bool:
        return self.max is not None

    def __str__(self) -> str:
        return f"{self.metric} {'<=' if self.upper else '>='} {self.limit:g}"


class SearchStop(StrictModel):
    """When the race ends (whichever comes first); it always ends after `cycles` rounds."""

    max_survivors: int = Field(1, ge=1, le=10_000, description="Stop once at most this many configurations are left.")
    precision: float = Field(
        0.02, gt=0, lt=1, description="Stop once every survivor is within this fraction of the pick with confidence, and "
                                      "the pick's CI half-width (relative) is at most it; the lone survivor also runs "
                                      "until its half-width meets it.")
    gpu_budget_s: float | None = Field(
        None, gt=0, description="GPU-seconds (item wall time x GPUs): after min_rounds, stop before a round that "
                                "would exceed it (predicted from each survivor's last item without load and warmup); "
                                "'8min', 480; unset: no budget.")

    @field_validator("gpu_budget_s", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)


class SearchConfig(StrictModel):
    """Race the experiments for the lowest `objective` that meets every constraint, with confidence."""

    objective: Literal[OBJECTIVES] = Field(  # type: ignore[valid-type]
        "adjusted_energy_per_output_token", description="Figure to minimise (per request: energy / prompts or requests).")
    constraints: list[SearchConstraint] = Field(default_factory=list, description="Limits every pick must meet.")
    stop: SearchStop = Field(default_factory=SearchStop, description="Stop rule.")
    min_rounds: int = Field(2, ge=2, le=1000, description="Rounds every configuration runs before any is dropped.")
    confidence: float = Field(
        0.95, ge=0.5, lt=1, description="1 - the chance that a round drops the best configuration (Bonferroni over each configuration's tests).")
    reference: str | dict[str, Any] | None = Field(
        None, description="What the saving is stated against: unset = the campaign's defaults; an experiment id or name; "
                          "or dotted overrides of the defaults ({workload.batch_size: 8}). Added when not in the grid.")

    @field_validator("reference")
    @classmethod
    def _paths_exist(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if isinstance(value, dict):
            for path in value:
                head, _, rest = path.partition(".")
                model = BACKEND_SECTIONS.get(head)
                problem = check_path(model, rest) if model and rest else check_path(ExperimentConfig, path)
                if problem:
                    raise ValueError(f"{path!r}: {problem}")
        elif isinstance(value, str) and not value.strip():
            raise ValueError("an empty reference; leave it out for the campaign's defaults")
        return value

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence


class CampaignConfig(Protocol):
    """What a search reads of its campaign (``config.campaign.CampaignConfig``, which imports this module)."""

    @property
    def search(self) -> SearchConfig | None: ...

    @property
    def cycles(self) -> Any: ...

    @property
    def order(self) -> str: ...

    @property
    def defaults(self) -> dict[str, Any]: ...

    @property
    def max_cycles(self) -> int: ...


def campaign_problems(campaign: CampaignConfig) -> list[str]:
    """What makes a campaign unable to race (field path first), beyond the models' own checks."""
    search = campaign.search
    if search is None:
        return []
    problems = []
    if not isinstance(campaign.cycles, int):
        problems.append("cycles: a search sets the most rounds with cycles: N; adaptive cycles do not apply "
                        "(the race decides when each configuration stops)")
    elif campaign.cycles < search.min_rounds:
        problems.append(f"cycles: {campaign.cycles} is below search.min_rounds ({search.min_rounds}); "
                        "cycles is the most rounds a search runs")
    if campaign.order == "grouped":
        problems.append("order: a search runs the survivors round by round: use interleaved or shuffled")
    return problems


def _reference_row(campaign: CampaignConfig, overrides: dict[str, Any]) -> dict[str, Any]:
    defaults = campaign.defaults
    backend = str(overrides.get("backend", defaults.get("backend", "transformers")))
    row = copy.deepcopy({k: v for k, v in defaults.items() if k not in BACKEND_SECTIONS or k == backend})
    row["backend"] = backend
    if isinstance(row.get("model"), str):
        row["model"] = {"name": row["model"]}
    for path, value in overrides.items():
        set_path(row, path, value)
    return row


class _Named(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def config(self) -> ExperimentConfig: ...


def find_reference(campaign: CampaignConfig, experiments: Sequence[_Named]) -> tuple[tuple[str, ExperimentConfig] | None, list[str]]:
    """(id, config) of the reference experiment (maybe one not in ``experiments``), or None and the problems."""
    assert campaign.search is not None
    ref = campaign.search.reference
    if isinstance(ref, str):
        named = [e for e in experiments if ref in (e.id, e.config.name)]
        named = named or [e for e in experiments if e.id.startswith(ref)]
        if len(named) == 1:
            return (named[0].id, named[0].config), []
        which = "matches several experiments" if named else "matches no experiment id or name"
        return None, [f"search.reference: {ref!r} {which}"]
    where = "search.reference" if ref else "search.reference (the campaign's defaults)"
    try:
        config = ExperimentConfig.model_validate(_reference_row(campaign, ref or {}))
    except ValidationError as exc:
        return None, [f"{where}: {p}" for p in problems_from_validation(exc)]
    if config.model is None:  # the models are grid points only: the defaults alone are no experiment
        return None, [f"{where}: names no model; give defaults a model, or set search.reference to an experiment's "
                      "id or name"]
    digest = config_hash(config)
    for exp in experiments:
        if config_hash(exp.config) == digest:
            return (exp.id, exp.config), []
    return (experiment_id(config), config), []


def reference_to_add(campaign: CampaignConfig, experiments: Sequence[_Named]) -> tuple[ExperimentConfig | None, list[str]]:
    """The search's reference config when it is not among ``experiments`` (None when it is, or no search), and
    the problems that keep the campaign from racing."""
    if campaign.search is None:
        return None, []
    problems = campaign_problems(campaign)
    reference, found = find_reference(campaign, experiments)
    problems += found
    if problems or reference is None or any(e.id == reference[0] for e in experiments):
        return None, problems
    return reference[1], []


def describe_search(campaign: CampaignConfig, experiments: Sequence[_Named]) -> list[str]:
    """``lem config show``'s lines for a search: objective, constraints, stop rule, reference, the most items."""
    search = campaign.search
    if search is None:
        return []
    reference, _ = find_reference(campaign, experiments)
    stop = search.stop
    budget = f", GPU budget {stop.gpu_budget_s:.0f} s" if stop.gpu_budget_s is not None else ""
    return [
        f"search: minimise {search.objective}; constraints: {'; '.join(map(str, search.constraints)) or 'none'}",
        f"search: {len(experiments)} configurations, {search.min_rounds} to {campaign.max_cycles} rounds "
        f"(at most {len(experiments) * campaign.max_cycles} items); drops at {search.confidence:.0%} confidence per round",
        f"search: stop at {stop.max_survivors} survivor(s) or survivors within ±{stop.precision:.1%}, pick's CI "
        f"±{stop.precision:.1%}{budget}",
        f"search: reference {reference[0] if reference else '?'}"
        + (" (the campaign's defaults)" if search.reference is None else ""),
    ]
