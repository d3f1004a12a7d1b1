"""The figures of one measured window (and each device's share), declared once: energy/ builds them
(``energy.measurement.build_measurement``), results/ stores them in each ``ExperimentResult``.

They live here, in the layer both import, so the record the meter computes *is* the record a result
holds (no copy kept in step by a test). Missing values are ``None`` (JSON null), never 0.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RecordModel(BaseModel):
    """A stored record: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain values (copies: editing them leaves the record as it was)."""
        return self.model_dump()


class DeviceEnergy(RecordModel):
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


class WindowEnergy(RecordModel):
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
