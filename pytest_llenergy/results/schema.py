"""The result of one (experiment, cycle): a versioned pydantic model, one JSON file each.

Missing values are ``None`` (JSON null), never 0: an unmeasured quantity is not a zero.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pytest_llenergy.results.phase_schema import PhaseEnergy, PhaseInfo, ServingStats

SCHEMA_VERSION = 1
Status = Literal["pending", "running", "passed", "failed", "skipped", "interrupted"]


class ResultModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceEnergy(ResultModel):
    """One device's share of a measured window."""

    device: str = Field(description="Device label: `gpu0`, `cpu-package-0`, `replay0`, ...")
    name: str | None = None
    uuid: str | None = None
    counter_energy_j: float | None = Field(None, description="Raw hardware energy counter difference over the window.")
    integral_energy_j: float | None = Field(None, description="Trapezoid integral of sampled power over the window.")
    energy_j: float | None = Field(None, description="Best figure: the edge-corrected counter when available, else the raw counter, else the integral.")
    baseline_power_w: float | None = None
    adjusted_energy_j: float | None = Field(None, description="energy_j minus baseline power x window duration.")
    mean_power_w: float | None = None
    peak_power_w: float | None = None
    peak_memory_mb: float | None = None
    mean_utilization_pct: float | None = None
    max_temperature_c: float | None = None
    throttle_s: dict[str, float] = Field(default_factory=dict, description="Seconds throttled per cause (violation counters).")
    edge_method: str | None = Field(None, description="counter+series (edge-corrected), counter (raw delta) or series.")
    uncertainty_j: float | None = Field(None, description="This device's raw-energy uncertainty (1 sd).")
    host_bound: bool | None = Field(None, description="Mean GPU utilisation 5-70 %: device work, host-bound (null: unknown).")


class WindowEnergy(ResultModel):
    """One named measurement window (``energy.measure(name=...)``)."""

    name: str
    source: str = Field(description="nvml, rapl, estimate or replay.")
    estimated: bool = False
    simulated: bool = False
    duration_s: float
    energy_j: float | None = Field(None, description="Raw energy, all devices: the edge-corrected counter where possible.")
    counter_energy_j: float | None = Field(None, description="Raw counter delta between the edge reads (not edge-corrected).")
    integral_energy_j: float | None = Field(None, description="Integral of the power series over the window.")
    disagreement_pct: float | None = Field(None, description="(integral - energy) / energy x 100 (counter sources).")
    adjusted_energy_j: float | None = Field(None, description="Raw GPU energy minus baseline over exactly this window.")
    baseline_power_w: float | None = None
    mean_power_w: float | None = None
    peak_power_w: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    energy_per_output_token_j: float | None = None
    energy_per_token_j: float | None = None
    adjusted_energy_per_output_token_j: float | None = None
    adjusted_energy_per_token_j: float | None = None
    edge_corrected: bool | None = Field(None, description="energy_j is the counter corrected at the edges by the power series.")
    edge_method: str | None = Field(None, description="counter+series, counter or series (joined when devices differ).")
    counter_period_s: float | None = Field(None, description="Counter update period used (measured when the window spans >= 8 updates).")
    uncertainty_j: float | None = Field(None, description="Uncertainty (1 sd) of energy_j: quadrature of the raw parts.")
    adjusted_uncertainty_j: float | None = Field(None, description="Uncertainty (1 sd) of adjusted_energy_j: raw parts plus baseline sd and drift.")
    uncertainty_parts_j: dict[str, float] = Field(
        default_factory=dict, description="counter_quantisation, series_counter, short_window, baseline_sd, baseline_drift (J).")
    uncertain: bool = Field(False, description="adjusted_uncertainty_j > 5 % of adjusted_energy_j (raw figures when not adjusted).")
    mean_utilization_pct: float | None = Field(None, description="Mean GPU utilisation over the window, devices averaged.")
    host_bound: bool | None = Field(None, description="5 <= mean_utilization_pct < 70: device work, host-bound (null: the source gives no utilisation).")
    n_samples: int = 0
    sample_hz: float | None = None
    throttled: bool = Field(False, description="Thermal, board-limit or reliability throttling in the window (flags throttled:<cause>).")
    throttle_s: dict[str, float] = Field(default_factory=dict)
    power_capped_share: float | None = Field(
        None, description="Share of the window the power limit capped clocks (normal on a busy GPU; not a flag).")
    flags: list[str] = Field(default_factory=list, description="short_window, edge_phase_unknown, uncertain, host_bound, throttled:<cause>, counter_unavailable, sampler_gaps, no_samples, ...")
    devices: list[DeviceEnergy] = Field(default_factory=list)


class BaselineInfo(ResultModel):
    """The idle power subtracted from GPU energy, and where it came from."""

    method: Literal["fresh", "cached", "revalidated", "none"]
    power_w: dict[str, float] = Field(default_factory=dict, description="Idle watts per device.")
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
