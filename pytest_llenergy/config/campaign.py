"""The campaign file: experiments (defaults, grid, explicit list), cycles, order and run settings."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from pytest_llenergy.config.base import StrictModel
from pytest_llenergy.config.budgets import Budget
from pytest_llenergy.config.carbon import CarbonConfig
from pytest_llenergy.config.dispatch import DispatchConfig
from pytest_llenergy.config.experiment import NAME_PATTERN, ExperimentConfig
from pytest_llenergy.config.measurement import MeasurementConfig
from pytest_llenergy.config.paths import check_path
from pytest_llenergy.config.reuse import ReuseConfig
from pytest_llenergy.config.search import SearchConfig
from pytest_llenergy.config.sections import BACKEND_SECTIONS
from pytest_llenergy.config.units import parse_duration

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


MIN_CYCLES, MAX_CYCLES = 1, 10_000
ADAPTIVE_METRICS = (
    "energy_per_output_token", "energy_per_token", "energy", "tokens_per_s", "mean_power",
    "adjusted_energy_per_output_token", "adjusted_energy_per_token", "adjusted_energy",
)


class AdaptiveCycles(StrictModel):
    """Run at least `min` cycles, at most `max`, stopping an experiment once its CI is tight enough."""

    min: int = Field(3, ge=2, le=MAX_CYCLES, description="Cycles always run.")
    max: int = Field(10, ge=2, le=MAX_CYCLES, description="Cycles planned (items collected); later ones skip once the target is met.")
    target_ci_halfwidth: float = Field(0.02, gt=0, lt=1, description="Relative 95 % CI half-width to reach (0.02 = 2 %).")
    metric: Literal[ADAPTIVE_METRICS] = Field("energy_per_output_token", description="Metric whose CI decides.")  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _min_le_max(self) -> AdaptiveCycles:
        if self.max < self.min:
            raise ValueError("cycles.max must be >= cycles.min")
        return self


GapValue = float | Literal["adaptive"]
# Adaptive gaps: measured on an H200 (docs/methodology.md); the thermal wait uses these defaults too.
ADAPTIVE_MAX_WAIT_S = 120.0
ADAPTIVE_POWER_TOLERANCE = 0.05
ADAPTIVE_TEMP_TOLERANCE_C = 2.0


class GapsConfig(StrictModel):
    """Pauses before items so the GPU starts each measurement from a settled state."""

    between_experiments: GapValue = Field(
        "adaptive", description="Before each item: seconds ('10s') or 'adaptive'; unset: ini `lem_gap_experiments`, else the default."
    )
    between_cycles: GapValue = Field(
        "adaptive", description="Before the first item of a new cycle (replaces the experiment gap); unset: ini `lem_gap_cycles`, else the default."
    )
    max_wait: float = Field(ADAPTIVE_MAX_WAIT_S, ge=0, le=3600, description="Longest adaptive wait, seconds.")
    power_tolerance: float = Field(
        ADAPTIVE_POWER_TOLERANCE, gt=0, le=5, description="Adaptive: power within this fraction above the P0 baseline."
    )
    temp_tolerance_c: float = Field(
        ADAPTIVE_TEMP_TOLERANCE_C, gt=0, le=50, description="Adaptive: temperature within this many degrees of the baseline's."
    )

    @field_validator("between_experiments", "between_cycles", "max_wait", mode="before")
    @classmethod
    def _parse_duration(cls, value: Any) -> Any:
        if value is None or value == "adaptive":
            return value
        return parse_duration(value)


class NotificationsConfig(StrictModel):
    """Webhook notifications (http/https POST of a small JSON payload)."""

    webhook_url: str | None = Field(None, description="http(s) URL; unset: ini `lem_webhook_url`.")
    on: list[Literal["failure", "complete", "campaign_done"]] = Field(
        default_factory=lambda: ["failure", "campaign_done"],  # type: ignore[arg-type]
        description="Events: failure (an item failed), complete (an item passed), campaign_done (session end).",
    )
    timeout_s: float = Field(5.0, gt=0, le=60, description="Per-request timeout.")
    retries: int = Field(3, ge=0, le=10, description="Retries with exponential backoff.")

    @field_validator("webhook_url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None:
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value


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
        Budget.from_kwargs({**self.limits, "tolerance": self.tolerance, "adjusted": self.adjusted}, "campaign")
        return self

    def budget(self) -> Budget:
        return Budget.from_kwargs({**self.limits, "tolerance": self.tolerance, "adjusted": self.adjusted}, "campaign")




class CampaignConfig(StrictModel):
    """A campaign: what to measure, how often and in which order."""

    name: str = Field(description="Campaign name: letters, digits, - and _.")
    description: str = Field("", description="Free text shown in the terminal header and under report.html's title.")
    cycles: Annotated[
        Annotated[int, Tag("fixed")] | Annotated[AdaptiveCycles, Tag("adaptive")],
        Discriminator(lambda v: "adaptive" if isinstance(v, dict | AdaptiveCycles) else "fixed"),
    ] = Field(
        1, description="How many times every experiment is repeated (>= 1), or adaptive: {min, max, target_ci_halfwidth, metric}.",
        json_schema_extra={"constraints": f"fixed: >= {MIN_CYCLES}, <= {MAX_CYCLES}"},
    )
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
    gaps: GapsConfig = Field(default_factory=GapsConfig, description="Thermal gaps between items and cycles.")
    force_cold_start: bool = Field(False, description="Unload, free memory and reload the model for every item.")
    reuse: ReuseConfig = Field(default_factory=ReuseConfig, description="Loaded sessions kept resident per process, within a memory budget.")
    group_by: list[str] = Field(default_factory=list, description="Dotted config paths whose values group experiments for group CIs.")
    measurement: MeasurementConfig = Field(default_factory=MeasurementConfig, description="Energy source, sampling, baseline, warmup.")
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig, description="Webhook notifications.")
    budgets: list[BudgetRule] = Field(default_factory=list, description="Energy budgets for selected items.")
    results_dir: str = Field("lem-results", description="Where run directories go, relative to the pytest rootdir.")
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig, description="Where items run: here or in backend containers.")
    carbon: CarbonConfig = Field(default_factory=CarbonConfig, description="Optional emissions and cost from grid intensity, PUE and price.")
    search: SearchConfig | None = Field(
        None, description="Race the experiments for the lowest energy under limits (docs/search.md); cycles = the most rounds.")

    @field_validator("cycles")
    @classmethod
    def _cycles_positive(cls, value: int | AdaptiveCycles) -> int | AdaptiveCycles:
        if isinstance(value, int) and not MIN_CYCLES <= value <= MAX_CYCLES:
            raise ValueError(f"cycles must be between {MIN_CYCLES} and {MAX_CYCLES}")
        return value

    @field_validator("group_by")
    @classmethod
    def _group_paths_exist(cls, value: list[str]) -> list[str]:
        for path in value:
            head = path.split(".")[0]
            model = BACKEND_SECTIONS.get(head)
            problem = check_path(model, path.split(".", 1)[1]) if model and "." in path else check_path(ExperimentConfig, path)
            if problem:
                raise ValueError(f"{path!r}: {problem}")
        return value

    @property
    def max_cycles(self) -> int:
        return self.cycles if isinstance(self.cycles, int) else self.cycles.max

    @field_validator("results_dir")
    @classmethod
    def _results_dir_is_relative(cls, value: str) -> str:
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
