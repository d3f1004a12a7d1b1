"""Energy measurement: sources, sampler, meter, baseline, warmup, thermal gaps, environment.

Nothing here imports pytest or pydantic; NVML, torch and pandas are imported lazily where used.
"""

from .baseline import BaselineCache, BaselineReading, measure_baseline
from .environment import collect_environment
from .measurement import DeviceMeasurement, Measurement
from .meter import EnergyMeter, Window
from .sampler import Sampler, Timeseries
from .sources import (
    DEFAULT_TRACE,
    DeviceInfo,
    EnergySource,
    EstimateSource,
    NvmlSource,
    RaplSource,
    ReplaySource,
    SourceError,
    describe,
    resolve_source,
)
from .thermal import GapOutcome, fixed_gap, wait_until_settled
from .warmup import WarmupResult, run_warmup

__all__ = [
    "DEFAULT_TRACE",
    "BaselineCache",
    "BaselineReading",
    "DeviceInfo",
    "DeviceMeasurement",
    "EnergyMeter",
    "EnergySource",
    "EstimateSource",
    "GapOutcome",
    "Measurement",
    "NvmlSource",
    "RaplSource",
    "ReplaySource",
    "Sampler",
    "SourceError",
    "Timeseries",
    "WarmupResult",
    "Window",
    "collect_environment",
    "describe",
    "fixed_gap",
    "measure_baseline",
    "resolve_source",
    "run_warmup",
    "wait_until_settled",
]
