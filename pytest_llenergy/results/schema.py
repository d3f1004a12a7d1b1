"""The result of one (experiment, cycle): a versioned pydantic model, one JSON file each.

Missing values are ``None`` (JSON null), never 0: an unmeasured quantity is not a zero.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pytest_llenergy.config.records import (
    DeviceEnergy as DeviceEnergy,  # re-exported: part of the result schema
)
from pytest_llenergy.config.records import RecordModel, WindowEnergy
from pytest_llenergy.results.phase_schema import PhaseEnergy, PhaseInfo, ServingStats

SCHEMA_VERSION = 1
Status = Literal["pending", "running", "passed", "failed", "skipped", "interrupted"]


class ResultModel(RecordModel):
    """The base every model of a result shares (unknown keys are errors; config/records.py)."""


class BaselineInfo(ResultModel):
    """The idle power subtracted from GPU energy, and where it came from."""

    method: Literal["fresh", "cached", "revalidated", "tracked", "none"] = Field(
        description="fresh/cached/revalidated: a long reading; tracked: a long reading (anchor_w) moved by the idle "
                    "drift the re-check before this item read on the power series.")
    power_w: dict[str, float] = Field(default_factory=dict, description="Idle watts per device, as subtracted.")
    sd_w: dict[str, float] = Field(default_factory=dict)
    se_w: dict[str, float] = Field(
        default_factory=dict, description="Standard error of each device's mean idle power (from 1 s block means).")
    n_samples: int = 0
    duration_s: float | None = None
    age_s: float | None = None
    pstate: dict[str, int | None] = Field(default_factory=dict)
    temperature_c: dict[str, float | None] = Field(default_factory=dict)
    deep_idle_w: dict[str, float] | None = None
    drift_pct: float | None = None
    primed: bool | None = Field(
        None, description="NVML: whether the GPU priming burst ran before the baseline (false: see the result's warnings)."
    )
    anchor_w: dict[str, float] | None = Field(
        None, description="Tracked baselines: the long reading (counter) the subtracted idle was moved from.")
    recheck_before_w: dict[str, float] | None = Field(
        None, description="The idle level at the re-check just before this item (end of its gap), W per device: "
                          "the anchor moved by the re-check's series drift where tracked, else the re-check itself.")
    recheck_after_w: dict[str, float] | None = Field(
        None, description="The same at the re-check just after this item (the next item's gap); written into the "
                          "result once taken (none after a session's last item).")


class WarmupOutcome(ResultModel):
    mode: Literal["convergence", "fixed", "off"]
    converged: bool | None
    iterations: int
    final_cv: float | None = None
    cv_threshold: float | None = None
    latencies_s: list[float] = Field(default_factory=list)
    outcome: Literal["converged", "not_converged", "budget_exhausted", "fixed", "rewarm", "off"] | None = Field(
        None, description="What ended it: converged, not_converged (max_iterations), budget_exhausted (max_time_s), "
        "fixed, rewarm (a model and shape already warmed in this process), off.")
    duration_s: float | None = Field(None, description="Wall seconds the warmup took.")
    probe: str | None = Field(None, description="What each warmup run was, e.g. 'first batch (8 x 128 tokens), 4 new tokens'.")


class LatencyStats(ResultModel):
    """Latency figures, with the measurement mode named honestly."""

    mode: Literal["per_batch", "streaming", "engine_metrics"]
    batch_latency_s_mean: float | None = None
    batch_latency_s_p95: float | None = None
    ttft_ms_mean: float | None = None
    ttft_ms_p50: float | None = None
    ttft_ms_p95: float | None = None
    ttft_ms_p99: float | None = None
    itl_ms_mean: float | None = None
    itl_ms_p50: float | None = None
    itl_ms_p95: float | None = None
    itl_ms_p99: float | None = None


class EvictionInfo(ResultModel):
    """A resident session closed to make room (or because ``force_cold_start`` asked)."""

    model: str
    load_key: str
    reason: str
    footprint_bytes: int | None = None
    freed_bytes: int | None = Field(None, description="Device memory in use before minus after closing it (CUDA only).")
    close_s: float | None = Field(None, description="Seconds from the start of the eviction to the session closed and its memory freed.")
    shutdown: str | None = Field(None, description="How the engine closed, when the session says (vLLM: `shutdown`, or the "
                                 "engine processes it had to stop after the shutdown deadline).")


class LoadInfo(ResultModel):
    cold: bool = Field(description="True when the model was loaded for this item, false when reused.")
    load_time_s: float | None = None
    status: Literal["loaded", "resident", "reloaded", "cold_start"] | None = Field(
        None, description="loaded: first load in this process; resident: reused from memory; reloaded: loaded "
        "again after an eviction; cold_start: reloaded because force_cold_start is on.")
    reason: str | None = Field(None, description="Why it was loaded or reused, in words.")
    evicted: list[EvictionInfo] = Field(default_factory=list, description="Sessions closed before this load, and why.")
    footprint_bytes: int | None = Field(None, description="Memory the session holds (parameters + cache + reservations).")
    footprint_device: str | None = None
    resident_sessions: int | None = Field(None, description="Sessions resident in this process after this item's load.")


class ItemTiming(ResultModel):
    """Where one item's wall time went, in seconds (the session summary sums these)."""

    wall_s: float | None = Field(None, description="From the item's setup to the end of its call.")
    gap_s: float = 0.0
    load_s: float = 0.0
    baseline_s: float = 0.0
    warmup_s: float = 0.0
    measured_s: float = Field(0.0, description="Sum of the measured windows' durations.")


class GapInfo(ResultModel):
    kind: Literal["none", "fixed", "adaptive"]
    waited_s: float = 0.0
    reason: str | None = None
    start_power_w: dict[str, float] = Field(default_factory=dict)
    start_temperature_c: dict[str, float] = Field(default_factory=dict)


# -- container provenance (docker dispatch) -------------------------------------------------------------------------
class ContainerProvenance(ResultModel):
    """Where a dispatched item ran: the image (name and id) and the versions seen inside the container."""

    image: str | None = Field(None, description="The compose service's image, e.g. `llenergy/vllm:0.33.0-lem0.1.0`.")
    image_id: str | None = Field(None, description="The image's id (`sha256:...`) the container ran.")
    service: str | None = None
    strategy: str | None = Field(None, description="ephemeral or persistent.")
    container: str | None = None
    versions: dict[str, str] = Field(
        default_factory=dict, description="Python, CUDA and package versions seen inside the container.")


# -- end of container provenance -------------------------------------------------------------------------------------


class ExperimentResult(ResultModel):
    """Everything measured for one (experiment, cycle)."""

    schema_version: int = SCHEMA_VERSION
    campaign: str
    campaign_hash: str
    run_id: str
    experiment_id: str
    experiment_index: int = Field(description="1-based position among the campaign's experiments.")
    experiments_total: int
    cycle: int = Field(description="1-based cycle number.")
    cycles_total: int
    item_id: str
    status: Status = "passed"
    error: str | None = None
    config: dict[str, Any] = Field(description="The effective experiment config.")
    backend: str
    model: str
    started_at: str
    ended_at: str | None = None
    duration_s: float | None = Field(None, description="Duration of the measured generation.")
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    tokens_per_s: float | None = Field(None, description="Total (input + output) tokens per second.")
    output_tokens_per_s: float | None = None
    latency: LatencyStats | None = None
    energy: WindowEnergy | None = Field(None, description="The primary window (the first one measured).")
    windows: list[WindowEnergy] = Field(default_factory=list)
    baseline: BaselineInfo | None = None
    warmup: WarmupOutcome | None = None
    load: LoadInfo | None = None
    gap: GapInfo | None = None
    timing: ItemTiming | None = None
    peak_memory_mb: float | None = None
    engine: dict[str, Any] = Field(default_factory=dict, description="Engine versions and effective engine arguments.")
    environment_file: str | None = None
    host: str | None = Field(None, description="Host name of the machine that measured this item.")
    warnings: list[str] = Field(default_factory=list)
    timeseries_path: str | None = None
    budget: dict[str, Any] | None = None
    footprint: dict[str, Any] | None = Field(None, description="Emissions and cost (results.carbon.footprint) when configured.")
    phases: dict[str, PhaseEnergy] | None = Field(None, description="prefill, decode and other energy of the primary window.")
    phase_info: PhaseInfo | None = None
    serving: ServingStats | None = Field(None, description="Serving workload figures (workload.arrivals).")
    requests_path: str | None = Field(None, description="Per-request attribution table (Parquet), relative to the run dir.")
    container: ContainerProvenance | None = Field(None, description="Docker dispatch: image, image id, versions inside.")

    @property
    def key(self) -> str:
        return result_key(self.experiment_id, self.cycle)


def result_key(experiment_id: str, cycle: int) -> str:
    """The file stem and manifest key of one (experiment, cycle)."""
    return f"{experiment_id}__c{cycle}"
