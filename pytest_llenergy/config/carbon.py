"""Optional carbon and cost: grid intensity, PUE and electricity price (campaign ``carbon:`` or ini)."""

from __future__ import annotations

from pydantic import Field

from pytest_llenergy.config.base import StrictModel


class CarbonConfig(StrictModel):
    """Turns measured energy into emissions and cost: kWh x PUE x intensity (or price)."""

    grid_intensity_g_per_kwh: float | None = Field(
        None, ge=0, le=5000, description="Grid carbon intensity in gCO2e/kWh (e.g. 400; look yours up on Electricity Maps).")
    pue: float = Field(1.0, ge=1.0, le=5.0, description="Power usage effectiveness of the facility (1.0: none; data centres 1.1-1.6).")
    price_per_kwh: float | None = Field(None, ge=0, le=100, description="Electricity price per kWh, in `currency`.")
    currency: str = Field("USD", min_length=1, max_length=8, description="Currency of `price_per_kwh`.")

    @property
    def enabled(self) -> bool:
        return self.grid_intensity_g_per_kwh is not None or self.price_per_kwh is not None
