"""The idle-power reading subtracted from measured windows: a value type shared by the meter and the
baseline cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llenergy.energy.baseline_precision import BLOCK_S


@dataclass(frozen=True)
class BaselineReading:
    """Idle power per device label (W), with how and when it was measured."""

    power_w: dict[str, float]
    sd_w: dict[str, float] = field(default_factory=dict)
    n_samples: int = 0
    pstate: dict[str, int | None] = field(default_factory=dict)
    temperature_c: dict[str, float | None] = field(default_factory=dict)
    timestamp: float = 0.0
    duration_s: float = 0.0
    deep_idle_w: dict[str, float] | None = None
    drift_pct: float | None = None
    #: standard error of each device's mean, from block means (samples are autocorrelated)
    se_w: dict[str, float] = field(default_factory=dict)
    #: mean of each device's power series over the reading: what a re-check's drift is read on
    #: (series to series; the series sits ~0.1 W from the counter on an H200, ``tracked``)
    series_w: dict[str, float] = field(default_factory=dict)
    #: for a tracked baseline, the long reading it was moved from (``energy.baseline.tracked``)
    anchor_w: dict[str, float] | None = None

    def sd_of_mean_w(self) -> dict[str, float]:
        """The standard error of each device's mean idle power: ``se_w`` where measured, else (a
        reading cached before block means were kept) sd / sqrt(seconds / block length)."""
        blocks = max(self.duration_s / BLOCK_S, 1.0)
        return {k: self.se_w.get(k, v / blocks**0.5) for k, v in self.sd_w.items()}

    def to_info(self, method: str, age: float | None, primed: bool | None = None,
                recheck_before_w: dict[str, float] | None = None) -> dict[str, Any]:
        """A dict matching ``BaselineInfo`` in results/schema.py (``primed``: whether the P0 priming
        burst ran before this baseline, None where no burst applies; ``recheck_before_w``: the idle
        re-check just before the item; the one after it is written in later, once taken)."""
        return {
            "recheck_before_w": dict(recheck_before_w) if recheck_before_w is not None else None,
            "recheck_after_w": None,
            "primed": primed,
            "method": method, "power_w": dict(self.power_w), "sd_w": dict(self.sd_w), "se_w": dict(self.se_w),
            "n_samples": self.n_samples, "duration_s": self.duration_s, "age_s": age,
            "pstate": dict(self.pstate), "temperature_c": dict(self.temperature_c),
            "deep_idle_w": dict(self.deep_idle_w) if self.deep_idle_w else None,
            "drift_pct": self.drift_pct,
            "anchor_w": dict(self.anchor_w) if self.anchor_w is not None else None,
        }

    def device_entry(self, label: str) -> dict[str, Any]:
        """The JSON-serialisable cache entry of one device."""
        deep = (self.deep_idle_w or {}).get(label)
        return {"power_w": self.power_w[label], "sd_w": self.sd_w.get(label), "se_w": self.se_w.get(label),
                "n_samples": self.n_samples, "pstate": self.pstate.get(label),
                "temperature_c": self.temperature_c.get(label), "timestamp": self.timestamp,
                "duration_s": self.duration_s, "deep_idle_w": deep, "series_w": self.series_w.get(label)}

    @classmethod
    def from_entries(cls, entries: dict[str, dict[str, Any]]) -> BaselineReading:
        """Combine per-device cache entries (label -> entry) into one reading."""
        deep = {k: float(e["deep_idle_w"]) for k, e in entries.items() if e.get("deep_idle_w") is not None}
        return cls(
            power_w={k: float(e["power_w"]) for k, e in entries.items()},
            sd_w={k: float(e["sd_w"]) for k, e in entries.items() if e.get("sd_w") is not None},
            n_samples=min(int(e.get("n_samples", 0)) for e in entries.values()),
            pstate={k: e.get("pstate") for k, e in entries.items()},
            temperature_c={k: e.get("temperature_c") for k, e in entries.items()},
            timestamp=min(float(e["timestamp"]) for e in entries.values()),
            duration_s=min(float(e.get("duration_s", 0.0)) for e in entries.values()),
            deep_idle_w=deep or None,
            se_w={k: float(e["se_w"]) for k, e in entries.items() if isinstance(e.get("se_w"), (int, float))},
            series_w={k: float(e["series_w"]) for k, e in entries.items()
                      if isinstance(e.get("series_w"), (int, float))},
        )
