"""Gaps between experiments: wait until the devices are back on their idle plateau (bounded).

After heavy work an H200 falls from ~690 W to a P0 plateau (~120 W) that lasts minutes; deep
idle (~82 W) may take far longer. ``wait_until_settled`` therefore waits until every device's
power (mean of the last second) is at or below ``baseline x (1 + power_tolerance)`` and its
temperature at or below ``baseline + temp_tolerance_c``: being cooler than the baseline counts
as settled, so it never waits for deep idle. It gives up after ``max_wait_s``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_llenergy.config.campaign import (
    ADAPTIVE_MAX_WAIT_S,
    ADAPTIVE_POWER_TOLERANCE,
    ADAPTIVE_TEMP_TOLERANCE_C,
)
from pytest_llenergy.energy.sampler import SAMPLE_HZ
from pytest_llenergy.energy.sources.base import EnergySource, SourceError

STATUS_EVERY_S = 5.0


@dataclass(frozen=True)
class GapOutcome:
    """How long the gap lasted and whether the devices settled (None: not checked)."""

    waited_s: float
    settled: bool | None
    reason: str
    last_power_w: dict[str, float | None] = field(default_factory=dict)
    last_temp_c: dict[str, float | None] = field(default_factory=dict)

    def to_info(self, kind: str) -> dict[str, Any]:
        """A dict matching ``GapInfo`` in results/schema.py."""
        return {"kind": kind, "waited_s": self.waited_s, "reason": self.reason,
                "start_power_w": {k: v for k, v in self.last_power_w.items() if v is not None},
                "start_temperature_c": {k: v for k, v in self.last_temp_c.items() if v is not None}}


def fixed_gap(seconds: float, sleep: Callable[[float], None] = time.sleep) -> GapOutcome:
    """Sleep a fixed time (no check)."""
    if seconds > 0:
        sleep(seconds)
    return GapOutcome(max(float(seconds), 0.0), None, f"fixed {seconds:g} s")


def _check(labels: list[str], power: np.ndarray, temp: np.ndarray | None,
           base_p: dict[str, float], base_t: dict[str, float | None],
           p_tol: float, t_tol: float) -> list[str]:
    """Reasons the devices are not settled yet (empty: settled)."""
    pending = []
    for j, label in enumerate(labels):
        if (b := base_p.get(label)) is not None and power[j] > b * (1 + p_tol):
            pending.append(f"{label} power {power[j]:.0f} W > {b * (1 + p_tol):.0f} W")
        bt = base_t.get(label)
        if bt is not None and temp is not None and np.isfinite(temp[j]) and temp[j] > bt + t_tol:
            pending.append(f"{label} temp {temp[j]:.0f} C > {bt + t_tol:.0f} C")
    return pending


def wait_until_settled(
    source: EnergySource,
    baseline_power_w: dict[str, float],
    baseline_temp_c: dict[str, float | None],
    power_tolerance: float = ADAPTIVE_POWER_TOLERANCE,
    temp_tolerance_c: float = ADAPTIVE_TEMP_TOLERANCE_C,
    max_wait_s: float = ADAPTIVE_MAX_WAIT_S,
    hz: float = SAMPLE_HZ,
    on_status: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> GapOutcome:
    """Wait (bounded) until power and temperature are back near the baseline."""
    labels = [d.label for d in source.devices()]
    window = max(1, round(hz))  # one second of readings
    recent: deque[np.ndarray] = deque(maxlen=window)
    t0 = clock()
    next_status = t0
    power = np.full(len(labels), np.nan)
    temp: np.ndarray | None = None
    while True:
        try:
            recent.append(source.read_power())
            temp = source.read_aux().get("temperature_c")
        except SourceError as exc:
            return GapOutcome(clock() - t0, False, f"source error: {exc}",
                              _as_dict(labels, power), _as_dict(labels, temp))
        power = np.mean(recent, axis=0)
        waited = clock() - t0
        pending = _check(labels, power, temp, baseline_power_w, baseline_temp_c,
                         power_tolerance, temp_tolerance_c)
        if len(recent) == window and not pending:
            return GapOutcome(waited, True, f"settled after {waited:.1f} s",
                              _as_dict(labels, power), _as_dict(labels, temp))
        if waited >= max_wait_s:
            return GapOutcome(waited, False, f"not settled after {max_wait_s:g} s: "
                              + "; ".join(pending or ["too few readings"]),
                              _as_dict(labels, power), _as_dict(labels, temp))
        if on_status is not None and clock() >= next_status:
            on_status(f"cooling down {waited:.0f}/{max_wait_s:g} s: " + "; ".join(pending or ["settling"]))
            next_status += STATUS_EVERY_S
        sleep(1.0 / hz)


def _as_dict(labels: list[str], values: np.ndarray | None) -> dict[str, Any]:
    if values is None:
        return {label: None for label in labels}
    return {label: (float(v) if np.isfinite(v) else None) for label, v in zip(labels, values)}
