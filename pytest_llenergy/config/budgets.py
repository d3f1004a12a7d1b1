"""Energy budgets as users write them: limits in SI units or strings with units ("0.45 J", "300 W")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_llenergy.config.units import parse_quantity

# budget keyword -> (raw column, adjusted column or None, kind, words)
BUDGET_METRICS: dict[str, tuple[str, str | None, str, str]] = {
    "energy_per_output_token": ("energy_per_output_token_j", "adjusted_energy_per_output_token_j", "energy",
                                "energy per output token"),
    "energy_per_token": ("energy_per_token_j", "adjusted_energy_per_token_j", "energy", "energy per token"),
    "energy": ("energy_j", "energy_adjusted_j", "energy", "energy"),
    "mean_power": ("mean_power_w", None, "power", "mean power"),
}
_UNIT = {"energy": "J", "power": "W"}


@dataclass(frozen=True)
class Budget:
    """Upper limits per metric; ``tolerance`` is a fraction added to every limit."""

    limits: dict[str, float]
    tolerance: float = 0.0
    adjusted: bool = True
    source: str = "marker"

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any], source: str = "marker") -> Budget:
        """Parse marker/YAML keywords; unknown keywords and bad values raise ValueError."""
        kwargs = dict(kwargs)
        tolerance = _parse_tolerance(kwargs.pop("tolerance", 0.0))
        adjusted = kwargs.pop("adjusted", True)
        if not isinstance(adjusted, bool):
            raise ValueError(f"adjusted must be true or false, got {adjusted!r}")
        unknown = sorted(set(kwargs) - set(BUDGET_METRICS))
        if unknown:
            raise ValueError(f"unknown budget keyword(s) {', '.join(unknown)} (known: {', '.join(BUDGET_METRICS)}, tolerance, adjusted)")
        if not kwargs:
            raise ValueError("a budget needs at least one limit")
        limits = {}
        for name, value in kwargs.items():
            limit = parse_quantity(value, BUDGET_METRICS[name][2])
            if limit <= 0:
                raise ValueError(f"{name}: a budget must be positive, got {value!r}")
            limits[name] = limit
        return cls(limits, tolerance, adjusted, source)

    def column(self, metric: str) -> tuple[str, bool]:
        """The result column a limit applies to, and whether it is the adjusted figure."""
        raw, adjusted, _, _ = BUDGET_METRICS[metric]
        if self.adjusted and adjusted is not None:
            return adjusted, True
        return raw, False

    def columns(self, metric: str) -> list[tuple[str, bool]]:
        """Columns to try in order: the adjusted figure (when asked for), then the raw one.

        CPU sources (RAPL, the estimate) measure no idle baseline, so they have no adjusted
        figure: the budget then applies to raw energy and says so.
        """
        raw, adjusted, _, _ = BUDGET_METRICS[metric]
        if self.adjusted and adjusted is not None:
            return [(adjusted, True), (raw, False)]
        return [(raw, False)]


def _parse_tolerance(value: Any) -> float:
    if isinstance(value, str):
        text = value.strip()
        number = float(text.rstrip("%")) / 100 if text.endswith("%") else float(text)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(f"tolerance must be a fraction or a percentage, got {value!r}")
    if not 0 <= number < 10:
        raise ValueError(f"tolerance must be between 0 and 10 (fraction), got {value!r}")
    return number


def format_quantity(value: float, kind: str) -> str:
    unit = _UNIT[kind]
    for factor, prefix in ((1e6, "M"), (1e3, "k"), (1e-3, ""), (0.0, "m")):
        if abs(value) >= factor:
            scale = factor if prefix else 1.0
            scale = 1e-3 if prefix == "m" else scale
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"
