"""Energy sources and ``resolve_source``, which picks one from a spec string.

Specs: ``auto`` (NVML, else RAPL, else estimate), ``nvml``, ``rapl``, ``estimate``, ``replay``
(the shipped H200 trace), ``replay:PATH``; a replay spec may end in ``?scale=1.1`` (also
``speed=``, ``loop=0``, ``start=`` (trace seconds) and ``counter_period=0.1``: a counter that moves
in 100 ms steps as NVML's does), e.g. ``replay?scale=1.1`` or ``replay:trace.csv?scale=0.9``.
"""

from __future__ import annotations

from pathlib import Path

from pytest_llenergy.config.measurement import ENERGY_SOURCES
from pytest_llenergy.energy.sources.base import (
    BaseSource,
    DeviceInfo,
    EnergySource,
    PowerSamples,
    SourceError,
)
from pytest_llenergy.energy.sources.estimate import DEFAULT_CPU_CORE_POWER_W, EstimateSource
from pytest_llenergy.energy.sources.nvml import NvmlSource
from pytest_llenergy.energy.sources.rapl import RaplSource
from pytest_llenergy.energy.sources.replay import DEFAULT_TRACE, ReplaySource

SPECS = (*ENERGY_SOURCES, "replay:PATH")


def parse_replay_spec(spec: str) -> dict:
    """Keyword arguments of :class:`ReplaySource` for a ``replay[:PATH][?k=v&...]`` spec."""
    body, _, query = spec.partition("?")
    kwargs: dict = {}
    if body.lower().startswith("replay:"):
        path = body[len("replay:"):]
        if not path:
            raise ValueError(f"energy source {spec!r}: empty path after 'replay:'")
        kwargs["path"] = Path(path).expanduser()
    elif body.lower() != "replay":
        raise ValueError(f"energy source {spec!r}: expected replay or replay:PATH")
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        try:
            if key in ("scale", "speed"):
                kwargs[key] = float(value)
            elif key in ("start", "counter_period"):
                kwargs[f"{key}_s"] = float(value)
            elif key == "loop":
                kwargs[key] = value.lower() not in ("0", "false", "no")
            else:
                raise ValueError(f"unknown option {key!r} (scale, speed, loop, start, counter_period)")
        except ValueError as exc:
            raise ValueError(f"energy source {spec!r}: {exc}") from exc
    return kwargs


def describe(source: BaseSource) -> str:
    """A one-line description of a source: ``nvml: 1 GPU (NVIDIA H200)``."""
    devs = source.devices()
    if isinstance(source, NvmlSource):
        names = ", ".join(sorted({d.name or d.label for d in devs}))
        return f"nvml: {len(devs)} GPU{'s' if len(devs) != 1 else ''} ({names})"
    if isinstance(source, EstimateSource):
        return f"estimate: process CPU time x {source.cpu_core_power_w:g} W/core"
    if isinstance(source, ReplaySource):
        return f"replay: {source.path.name} x{source.scale:g} ({len(devs)} device{'s' if len(devs) != 1 else ''})"
    return f"{source.kind}: {', '.join(d.label for d in devs)}"


def resolve_source(
    spec: str = "auto",
    *,
    devices: list[int] | None = None,
    cpu_core_power_w: float | None = None,
) -> tuple[BaseSource, str]:
    """The source named by ``spec`` and a one-line reason for the choice.

    Raises ValueError for an unknown spec (or a malformed trace) and SourceError when an
    explicitly named source (nvml, rapl, a replay file) is unavailable; ``auto`` never fails
    (estimate is always available).
    """
    spec = (spec or "auto").strip()
    low = spec.lower()
    src: BaseSource
    if low == "nvml":
        src = NvmlSource(devices)
    elif low == "rapl":
        src = RaplSource()
    elif low == "estimate":
        src = EstimateSource(cpu_core_power_w)
    elif low == "replay" or low.startswith(("replay:", "replay?")):
        try:
            src = ReplaySource(**parse_replay_spec(spec))
        except OSError as exc:
            raise SourceError(f"replay trace not readable: {exc}") from exc
    elif low != "auto":
        raise ValueError(f"unknown energy source {spec!r}; expected one of {', '.join(SPECS)}")
    else:
        return _auto(devices, cpu_core_power_w)
    return src, describe(src)


def _auto(devices: list[int] | None, cpu_core_power_w: float | None) -> tuple[BaseSource, str]:
    reasons = []
    for name, factory in (("NVML", lambda: NvmlSource(devices)), ("readable RAPL", RaplSource)):
        try:
            src = factory()
        except SourceError as exc:
            reasons.append(f"no {name} ({exc})")
            continue
        return src, "auto: " + "; ".join([*reasons, describe(src)])
    estimate = EstimateSource(cpu_core_power_w)
    return estimate, "auto: " + ", ".join(reasons) + " → " + describe(estimate)


__all__ = [
    "DEFAULT_CPU_CORE_POWER_W",
    "DEFAULT_TRACE",
    "SPECS",
    "BaseSource",
    "DeviceInfo",
    "EnergySource",
    "EstimateSource",
    "NvmlSource",
    "PowerSamples",
    "RaplSource",
    "ReplaySource",
    "SourceError",
    "describe",
    "parse_replay_spec",
    "resolve_source",
]
