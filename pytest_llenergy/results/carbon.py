"""Emissions and cost of measured energy: per item, per 1,000 prompts, and (as metrics) per summary row.

Raw energy is used (the machine drew all of it, idle share included), times the facility's PUE.
"""

from __future__ import annotations

from typing import Any

from pytest_llenergy.config.base import default_of
from pytest_llenergy.config.carbon import CarbonConfig

J_PER_KWH = 3.6e6
CARBON_COLUMNS = ("gco2e", "cost", "gco2e_per_1k_prompts", "cost_per_1k_prompts")


def footprint(energy_j: float | None, prompts: int | None, *, grid_intensity_g_per_kwh: float | None,
              pue: float = default_of(CarbonConfig, "pue"), price_per_kwh: float | None = None,
              currency: str = default_of(CarbonConfig, "currency")) -> dict[str, Any] | None:
    """``{kwh, gco2e, cost, gco2e_per_1k_prompts, cost_per_1k_prompts, ...settings}``; None without energy."""
    if energy_j is None or (grid_intensity_g_per_kwh is None and price_per_kwh is None):
        return None
    kwh = energy_j / J_PER_KWH * pue
    out: dict[str, Any] = {"kwh": kwh, "pue": pue, "grid_intensity_g_per_kwh": grid_intensity_g_per_kwh,
                           "price_per_kwh": price_per_kwh, "currency": currency, "prompts": prompts}
    for name, factor in (("gco2e", grid_intensity_g_per_kwh), ("cost", price_per_kwh)):
        value = kwh * factor if factor is not None else None
        out[name] = value
        out[f"{name}_per_1k_prompts"] = value / prompts * 1000 if value is not None and prompts else None
    return out


def footprint_columns(entry: dict[str, Any] | None) -> dict[str, float | None]:
    """The result-frame columns of a stored footprint (empty when there is none)."""
    if not entry:
        return {}
    return {c: entry.get(c) for c in CARBON_COLUMNS}
