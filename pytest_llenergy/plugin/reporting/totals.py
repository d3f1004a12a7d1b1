"""The session's carbon and cost totals, for the terminal summary (settings: ``LemSession.carbon``)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llenergy.plugin.base import session_of


def totals_line(config: pytest.Config, footprints: list[dict[str, Any]]) -> str | None:
    """``carbon: 1.2 gCO2e, 0.0004 USD over 6 items (...)``, or None when not configured."""
    s = session_of(config).carbon
    if s is None or not s.enabled or not footprints:
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
