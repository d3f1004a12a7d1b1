"""Parse quantities users write as strings: durations ("10s", "2 min") and SI energy/power."""

from __future__ import annotations

import re

_NUMBER_UNIT = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+]?\.\d+)\s*([A-Za-z%]*)\s*$")

_DURATION = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 1e-3, "m": 60.0, "min": 60.0, "h": 3600.0}
_ENERGY = {"j": 1.0, "kj": 1e3, "mj": 1e-3, "wh": 3600.0, "kwh": 3.6e6}
_POWER = {"w": 1.0, "kw": 1e3, "mw": 1e-3}


def _split(text: str) -> tuple[float, str]:
    match = _NUMBER_UNIT.match(text)
    if not match:
        raise ValueError(f"cannot read {text!r} as a number with a unit")
    return float(match.group(1)), match.group(2)


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``10``, ``"10s"``, ``"250ms"``, ``"2min"``, ``"1h"``."""
    if isinstance(value, bool):
        raise ValueError("a duration cannot be true/false")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        number, unit = _split(value)
        if unit.lower() not in _DURATION:
            raise ValueError(f"unknown time unit {unit!r} in {value!r} (use s, ms, min or h)")
        seconds = number * _DURATION[unit.lower()]
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative (got {value!r})")
    return seconds


def parse_quantity(value: str | float | int, kind: str) -> float:
    """SI value of an energy (J) or power (W) limit: ``0.45``, ``"1.5 kJ"``, ``"2 Wh"``, ``"300 W"``."""
    if isinstance(value, bool):
        raise ValueError(f"an {kind} cannot be true/false")
    if isinstance(value, int | float):
        return float(value)
    number, unit = _split(value)
    table = _ENERGY if kind == "energy" else _POWER
    factor = table.get(unit.lower())
    if factor is None:
        if unit == "":
            return number
        raise ValueError(f"unknown {kind} unit {unit!r} in {value!r} (use {', '.join(table)})")
    if unit.lower() == "mj" and unit == "MJ":
        factor = 1e6
    if unit.lower() == "mw" and unit == "MW":
        factor = 1e6
    return number * factor


_BYTES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(value: str | float | int) -> tuple[str, float]:
    """A memory amount: ``("fraction", 0.8)`` from ``"80%"``, ``("bytes", n)`` from ``"40GiB"``, ``"512 MB"`` or a number of bytes."""
    if isinstance(value, bool):
        raise ValueError("a memory amount cannot be true/false")
    if isinstance(value, int | float):
        number, unit = float(value), "b"
    else:
        number, unit = _split(value)
        unit = unit.lower() or "b"
    if unit == "%":
        if not 0 < number <= 100:
            raise ValueError(f"a percentage of device memory must be in (0, 100], got {value!r}")
        return "fraction", number / 100
    if unit not in _BYTES:
        raise ValueError(f"unknown memory unit in {value!r} (use %, B, MB, GB, MiB, GiB, ...)")
    if number <= 0:
        raise ValueError(f"a memory amount must be positive, got {value!r}")
    return "bytes", number * _BYTES[unit]
