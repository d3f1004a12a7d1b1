"""How energy is measured: source, sampling, baseline and warmup settings."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from pytest_llenergy.config.base import StrictModel
from pytest_llenergy.config.phases import PhaseSettings

ENERGY_SOURCES = ("auto", "nvml", "rapl", "estimate", "replay")  # replay also as replay:PATH
WarmupMode = Literal["convergence", "fixed", "off"]
WARMUP_MODES: tuple[str, ...] = get_args(WarmupMode)


#: The relative 95 % CI half-width an adaptive baseline is sized for when the campaign sets none
#: (adaptive cycles set their own ``target_ci_halfwidth``).
BASELINE_CI_TARGET = 0.03


class BaselineSettings(StrictModel):
    """Idle power per device, measured with nothing running and subtracted over each window.

    Adaptive: the first reading lasts ``min_duration_s``; it goes on (at most ``duration_s`` in
    all) until the 95 % half-width of its mean (from 1 s block means, so autocorrelated samples
    are not counted as independent) is at most ``ci_share`` x ``ci_target`` x
    ``adjusted_fraction`` x the idle power: the baseline's own error then takes at most
    ``ci_share`` of the CI half-width of any window whose adjusted power is at least
    ``adjusted_fraction`` of idle (docs/methodology.md, "Adaptive baseline").
    """

    enabled: bool = Field(True, description="Measure and subtract the idle baseline (GPU energy only).")
    min_duration_s: float = Field(
        5.0, ge=0.5, le=3600,
        description="Shortest baseline measurement (the adaptive rule's floor; its error needs two 1 s blocks, so at least 2 s "
                    "are measured unless `duration_s` is shorter; a `duration_s` at or below the floor: that fixed length).")
    duration_s: float = Field(30.0, ge=0.5, le=3600, description="Longest baseline measurement (the adaptive rule's cap).")
    ci_target: float | None = Field(
        None, gt=0, lt=1,
        description="Relative 95 % CI half-width the campaign aims for; unset: adaptive cycles' `target_ci_halfwidth`, else 0.03.")
    ci_share: float = Field(
        0.25, gt=0, le=1, description="Largest share of that half-width the baseline's own 95 % uncertainty may take.")
    adjusted_fraction: float = Field(
        0.1, gt=0, le=10,
        description="Smallest expected adjusted power of a window, as a fraction of idle power (H200: host-bound generate "
                    "0.06-0.4, GPU-bound 0.4-1.5).")
    sample_hz: float = Field(10.0, ge=1, le=100, description="Sampling rate while measuring the baseline.")
    ttl_s: float = Field(3600.0, ge=0, description="How long a cached baseline stays valid (pytest cache).")
    revalidate_every: int = Field(
        5, ge=0,
        description="Re-check the baseline every N experiments (0: never) from the re-checks taken in the gaps since the last "
                    "(else a `revalidate_duration_s` reading): past `drift_threshold` it re-measures; without re-checks "
                    "that carry a power series a drift above 0.5 % is adopted.")
    revalidate_duration_s: float = Field(5.0, ge=0.5, le=600, description="Length of a revalidation reading when no re-checks were taken.")
    drift_threshold: float = Field(0.10, gt=0, le=1, description="Relative drift that triggers a full re-measure.")
    recheck_s: float = Field(
        0.5, ge=0, le=60,
        description="Before each campaign item re-measure idle power for this long (NVML only), as part of its thermal gap: "
                    "the last seconds of a fixed gap, the end of an adaptive one once settled (after the gap only when it "
                    "is shorter or did not settle); each item subtracts the baseline moved by the drift its re-check read "
                    "on the power series, the re-checks that bracket it give its baseline-drift uncertainty, and they "
                    "feed the revalidations (0: off).")

    @property
    def floor_s(self) -> float:
        """The adaptive rule's floor: ``min_duration_s``, or ``duration_s`` when the cap is below it."""
        return min(self.min_duration_s, self.duration_s)


class WarmupSettings(StrictModel):
    """Warmup before measured windows: until latencies are stable, or a fixed count.

    Paid once per loaded model and workload shape in a process (``once``); later items of that
    shape re-warm with ``rewarm_iterations`` runs after their gap. Campaign items warm up on a
    cheap probe of the real shapes: the first batch with ``probe_tokens`` new tokens.
    """

    mode: WarmupMode = Field("convergence", description="convergence: until CV < threshold; fixed: `iterations` runs; off.")
    cv_threshold: float = Field(0.05, gt=0, le=1, description="Coefficient of variation of the last `window` latencies.")
    window: int = Field(5, ge=2, le=1000, description="Latencies the CV is computed over.")
    min_iterations: int = Field(5, ge=1, le=10_000, description="Fewest warmup runs in convergence mode.")
    max_iterations: int = Field(50, ge=1, le=10_000, description="Most warmup runs in convergence mode.")
    iterations: int = Field(5, ge=1, le=10_000, description="Runs in fixed mode.")
    max_time_s: float = Field(30.0, gt=0, le=3600, description="Wall-time budget of one warmup; the outcome says `budget_exhausted` when it ran out.")
    once: bool = Field(True, description="Warm up once per loaded model and workload shape in a process; false: the full warmup before every item.")
    rewarm_iterations: int = Field(1, ge=0, le=1000, description="Probe runs before later items of an already warmed model and shape (after their gap).")
    probe_tokens: int = Field(4, ge=1, le=100_000, description="New tokens per warmup probe (the first batch of the real workload, capped at its output length).")

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false

    @model_validator(mode="after")
    def _bounds(self) -> WarmupSettings:
        if self.max_iterations < self.min_iterations:
            raise ValueError("max_iterations must be >= min_iterations")
        if self.mode == "convergence" and self.max_iterations < self.window:
            raise ValueError("max_iterations must be >= window in convergence mode")
        return self


class MeasurementConfig(StrictModel):
    """Energy source and sampling for every window of the run."""

    energy_source: str = Field(
        "auto", description="auto (nvml, else rapl, else estimate), nvml, rapl, estimate, replay or replay:PATH."
    )
    sample_hz: float = Field(10.0, ge=1, le=100, description="Background sampling rate for time series (1-100 Hz).")
    driver_buffer: bool = Field(
        True, description="Read the driver's own power-sample buffer (~50 Hz on NVIDIA) where it exists; false: poll at sample_hz."
    )
    cpu_core_power_w: float | None = Field(None, gt=0, le=1000, description="Watts per busy core for the estimate source.")
    baseline: BaselineSettings = Field(default_factory=BaselineSettings, description="Idle baseline.")
    warmup: WarmupSettings = Field(default_factory=WarmupSettings, description="Warmup before measuring.")
    phases: PhaseSettings = Field(default_factory=PhaseSettings, description="Prefill/decode split and per-request energy.")

    @field_validator("energy_source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        kind = value.split("?", 1)[0].split(":", 1)[0]  # replay[:PATH][?scale=...] (energy/sources)
        if kind not in ENERGY_SOURCES or (kind != "replay" and value != kind):
            raise ValueError(f"unknown energy source {value!r} (auto, nvml, rapl, estimate, replay, replay:PATH)")
        return value
