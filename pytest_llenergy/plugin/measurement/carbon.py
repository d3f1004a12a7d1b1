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
from pytest_llenergy.plugin.base import run_setting, session_of
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.results.carbon import footprint

OPTIONS = {"grid_intensity_g_per_kwh": "lem_grid_intensity", "pue": "lem_pue", "price_per_kwh": "lem_price_per_kwh",
           "currency": "lem_currency"}


def carbon_settings(config: pytest.Config) -> CarbonConfig:
    """Each carbon field by the one precedence rule (command line > campaign ``carbon:`` > ini > default)."""
    session = session_of(config)
    if session.carbon is not None:
        return session.carbon
    data = {name: run_setting(config, dest) for name, dest in OPTIONS.items()}
    try:
        settings = CarbonConfig.model_validate(data)
    except ValidationError as exc:
        raise pytest.UsageError("llenergy: " + "; ".join(problems_from_validation(exc, ("carbon",)))) from None
    session.carbon = settings
    return settings


def item_footprint(config: pytest.Config, energy_j: float | None, prompts: int | None) -> dict[str, Any] | None:
    s = carbon_settings(config)
    if not s.enabled:
        return None
    return footprint(energy_j, prompts, grid_intensity_g_per_kwh=s.grid_intensity_g_per_kwh, pue=s.pue,
                     price_per_kwh=s.price_per_kwh, currency=s.currency)


def resolve_settings(session: LemSession) -> None:
    """Configure step: the carbon and cost settings (``session.carbon``); a bad value is a usage error
    before anything runs."""
    carbon_settings(session.config)
