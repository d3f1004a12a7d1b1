"""The campaign file: experiments (defaults, grid, explicit list), cycles, order and run settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictModel
from .experiment import NAME_PATTERN
from .measurement import MeasurementConfig

GridValues = list[Any] | Any


class GridConfig(StrictModel):
    """A backend-aware cartesian product: backends x models x shared x that backend's overrides."""

    backends: list[str] | None = Field(None, min_length=1, description="Backends to cross; default: `defaults.backend`.")
    models: list[str | dict[str, Any]] | None = Field(
        None, min_length=1, description="Models to cross (names, or model mappings); default: `defaults.model`."
    )
    shared: dict[str, GridValues] = Field(
        default_factory=dict, description="Dotted experiment paths to lists of values, crossed for every backend."
    )
    backend_overrides: dict[str, dict[str, GridValues]] = Field(
        default_factory=dict,
        description="Per backend: paths inside that backend's section to lists of values; never leak to other backends.",
    )


class BudgetRule(StrictModel):
    """An energy budget applied to the campaign items it selects."""

    select: str | dict[str, Any] = Field(
        "*", description="Experiment-id glob (`transformers-*-bs8-*`) or field filters (`{backend: vllm, workload.batch_size: 8}`)."
    )
    limits: dict[str, float | str] = Field(
        description="Upper limits: energy_per_output_token, energy_per_token, energy, mean_power (numbers in J/W or strings with units)."
    )
    tolerance: float | str = Field(0.0, description="Allowance on every limit: a fraction (0.05) or a percentage ('5%').")
    adjusted: bool = Field(True, description="Check baseline-adjusted figures (true) or raw ones.")

    @model_validator(mode="after")
    def _limits_parse(self) -> BudgetRule:
        from .budgets import Budget

        Budget.from_kwargs({**self.limits, "tolerance": self.tolerance, "adjusted": self.adjusted}, "campaign")
        return self

    def budget(self):
        from .budgets import Budget

        return Budget.from_kwargs({**self.limits, "tolerance": self.tolerance, "adjusted": self.adjusted}, "campaign")


class CampaignConfig(StrictModel):
    """A campaign: what to measure, how often and in which order."""

    name: str = Field(description="Campaign name: letters, digits, - and _.")
    description: str = Field("", description="Free text shown in the report.")
    cycles: int = Field(1, ge=1, le=10_000, description="How many times every experiment is repeated.")
    order: Literal["interleaved", "shuffled", "grouped"] = Field(
        "interleaved",
        description="interleaved: cycle by cycle (A B C, A B C); shuffled: a seeded permutation per cycle; grouped: all cycles of A, then B.",
    )
    seed: int | None = Field(None, ge=0, description="Seed for shuffled order and statistics; drawn and printed when absent.")
    defaults: dict[str, Any] = Field(default_factory=dict, description="Experiment settings applied under every experiment.")
    grid: GridConfig | None = Field(None, description="Backend-aware grid of experiments.")
    experiments: list[dict[str, Any]] = Field(
        default_factory=list, description="Explicit experiments, each merged over `defaults`."
    )
    measurement: MeasurementConfig = Field(default_factory=MeasurementConfig, description="Energy source, sampling, baseline, warmup.")
    budgets: list[BudgetRule] = Field(default_factory=list, description="Energy budgets for selected items.")
    results_dir: str = Field("lem-results", description="Where run directories go, relative to the pytest rootdir.")

    @field_validator("results_dir")
    @classmethod
    def _results_dir_is_relative(cls, value: str) -> str:
        from pathlib import PurePath

        path = PurePath(value)
        if not value.strip() or path.is_absolute() or ".." in path.parts:
            raise ValueError("must be a relative path inside the project, without '..' (use --lem-results-dir for elsewhere)")
        return value

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("names use letters, digits, - and _ (at most 80, no path separators)")
        return value
