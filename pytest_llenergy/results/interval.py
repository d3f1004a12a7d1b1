"""One sample's mean, spread and confidence interval: the value type every summary row holds."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class BootstrapCI:
    """Mean, standard deviation and confidence interval of one sample (NaN where undefined)."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    method: str
    warning: str | None = None
    confidence: float = 0.95
    coverage: float = math.nan  # simulated coverage of this method at this n, normal cycle values
    coverage_skewed: float = math.nan  # ... and skewed (lognormal sigma 0.5) cycle values

    @property
    def halfwidth(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    @property
    def halfwidth_rel(self) -> float:
        """Half-width relative to |mean| (NaN without an interval, inf when the mean is 0)."""
        if math.isnan(self.halfwidth) or math.isnan(self.mean):
            return math.nan
        if self.mean == 0:
            return 0.0 if self.halfwidth == 0 else math.inf
        return self.halfwidth / abs(self.mean)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
