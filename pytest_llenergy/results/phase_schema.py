"""Result models for phases (prefill/decode/other), serving figures and the steady state."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PhaseEnergy(_Model):
    """One phase of the primary window; every figure with its standard uncertainty."""

    energy_j: float = Field(description="Joules attributed to the phase (counter-calibrated series integral).")
    adjusted_energy_j: float | None = Field(None, description="energy_j minus the baseline over the phase's time.")
    duration_s: float = Field(description="Time at least one request was in this phase.")
    tokens: int | None = Field(None, description="prefill: input tokens; decode: output tokens after each request's first.")
    energy_per_token_j: float | None = None
    adjusted_energy_per_token_j: float | None = None
    mean_power_w: float | None = None
    uncertainty_j: float = Field(description="Standard uncertainty of energy_j (resolution at the boundaries, calibration).")
    adjusted_uncertainty_j: float | None = Field(None, description="Adds the baseline's standard error x duration.")
    intervals: int = Field(description="Separate intervals of this phase (one per static batch, ...).")
    method: str = Field("direct", description="direct; phase_fit:<runs>runs:<samples>samples:window<ms>ms:lag<ms>ms (powers fitted through the sensor window); or phase_resolved:<runs>runs:<samples>samples (pooled samples, where no fit is possible).")
    flags: list[str] = Field(default_factory=list, description="below_resolution: intervals shorter than the sensor resolves.")
    direct_energy_j: float | None = Field(None, description="The direct split of the measured window, kept beside a phase-resolved figure.")


class SteadyStateInfo(_Model):
    """ML.ENERGY's steady state: from the first full batch to the start of draining."""

    start_s: float = Field(description="Seconds into the window.")
    end_s: float
    duration_s: float
    target_batch: int = Field(description="Running requests that count as a full batch.")
    energy_j: float
    adjusted_energy_j: float | None = None
    output_tokens: float = Field(description="Tokens generated inside the steady state.")
    energy_per_output_token_j: float | None = None
    adjusted_energy_per_output_token_j: float | None = None
    uncertainty_j: float
    flags: list[str] = Field(default_factory=list)


class ServingStats(_Model):
    """A serving workload: arrivals, latency percentiles, steady-state energy."""

    process: str = Field(description="poisson or trace.")
    target_rate_rps: float | None = None
    achieved_rate_rps: float | None = Field(None, description="Requests over the span of their arrivals.")
    requests: int
    ttft_ms: dict[str, float] = Field(default_factory=dict, description="p50, p90, p99, mean: arrival to first token.")
    itl_ms: dict[str, float] = Field(default_factory=dict, description="Per-request mean gap between tokens.")
    e2e_ms: dict[str, float] = Field(default_factory=dict, description="Arrival to last token.")
    steady_state: SteadyStateInfo | None = None


class PhaseInfo(_Model):
    """Where the phase boundaries came from."""

    source: str = Field(description="The engine hook or metric that stamped the boundaries.")
    clock: str
    requests: int
    lag_s: float = 0.0
    repeats: int = 0
    flags: list[str] = Field(default_factory=list, description=(
        "requests_outside_window:<n>: requests stamped outside the measured window. From the engine's stamps "
        "(vLLM; docs/validation/h200-vllm.md): split_unverified: the split between phases missed a same-span "
        "counter reference on an H200 (closure is exact); first_token_late:async_scheduling: first-token stamps "
        "late by up to one decode step (vllm.async_scheduling: false removes it)."))
