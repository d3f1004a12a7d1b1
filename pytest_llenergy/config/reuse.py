"""``reuse:``: how many loaded backend sessions a process keeps resident, within what memory."""

from __future__ import annotations

from pydantic import Field, field_validator

from pytest_llenergy.config.base import StrictModel
from pytest_llenergy.config.units import parse_memory


class ReuseConfig(StrictModel):
    """Keep up to ``max_resident`` loaded sessions per process (least recently used evicted first),
    as long as their footprints fit ``memory_budget`` on their device."""

    max_resident: int = Field(
        4, ge=1, le=64, description="Loaded sessions kept per process; 1: only the last one (a new model reloads)."
    )
    memory_budget: str = Field(
        "80%", description="Memory the resident sessions may hold per device kind: a share of the device's total "
        "('80%') or an amount ('40GiB'). A session that would not fit evicts the least recently used first.",
    )

    @field_validator("memory_budget", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            parse_memory(value)
        return value

    def budget(self) -> tuple[str, float]:
        """``("fraction", f)`` or ``("bytes", n)``."""
        return parse_memory(self.memory_budget)
