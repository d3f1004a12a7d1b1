"""Carbon and cost settings: the campaign's ``carbon:`` section, else the ini values.

Each campaign item's result gets a ``footprint`` (gCO2e and cost, also per 1,000 prompts); the
summary gets the same as metrics with CIs; the session's terminal summary gives the totals.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pytest_llenergy.config.carbon import CarbonConfig
from pytest_llenergy.config.errors import problems_from_validation
from pytest_llenergy.plugin.state import run_setting
from pytest_llenergy.results.carbon import footprint

OPTIONS = {"grid_intensity_g_per_kwh": "lem_grid_intensity", "pue": "lem_pue", "price_per_kwh": "lem_price_per_kwh",
           "currency": "lem_currency"}
SETTINGS = pytest.StashKey[CarbonConfig]()


def carbon_settings(config: pytest.Config) -> CarbonConfig:
    """Each carbon field by the one precedence rule (command line > campaign ``carbon:`` > ini > default)."""
    cached = config.stash.get(SETTINGS, None)
    if cached is not None:
        return cached
    data = {name: run_setting(config, dest) for name, dest in OPTIONS.items()}
    try:
        settings = CarbonConfig.model_validate(data)
    except ValidationError as exc:
        raise pytest.UsageError("llenergy: " + "; ".join(problems_from_validation(exc, ("carbon",)))) from None
    config.stash[SETTINGS] = settings
    return settings


def item_footprint(config: pytest.Config, energy_j: float | None, prompts: int | None) -> dict[str, Any] | None:
    s = carbon_settings(config)
    if not s.enabled:
        return None
    return footprint(energy_j, prompts, grid_intensity_g_per_kwh=s.grid_intensity_g_per_kwh, pue=s.pue,
                     price_per_kwh=s.price_per_kwh, currency=s.currency)


def totals_line(config: pytest.Config, footprints: list[dict[str, Any]]) -> str | None:
    """``carbon: 1.2 gCO2e, 0.0004 USD over 6 items (...)``, or None when not configured."""
    s = carbon_settings(config)
    if not s.enabled or not footprints:
        return None
    parts = []
    if s.grid_intensity_g_per_kwh is not None:
        parts.append(f"{sum(f.get('gco2e') or 0 for f in footprints):.4g} gCO2e")
    if s.price_per_kwh is not None:
        parts.append(f"{sum(f.get('cost') or 0 for f in footprints):.4g} {s.currency}")
    setting = ", ".join(p for p in (f"{s.grid_intensity_g_per_kwh:g} gCO2e/kWh" if s.grid_intensity_g_per_kwh is not None else "",
                                    f"{s.price_per_kwh:g} {s.currency}/kWh" if s.price_per_kwh is not None else "",
                                    f"PUE {s.pue:g}") if p)
    return f"carbon/cost: {', '.join(parts)} over {len(footprints)} item(s) ({setting}; raw energy; per 1,000 prompts in summary.csv)"


def pytest_configure(config: pytest.Config) -> None:
    carbon_settings(config)  # a bad value is a usage error before anything runs
