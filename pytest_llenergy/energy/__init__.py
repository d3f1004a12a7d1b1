"""Energy measurement: sources, sampler, meter, baseline, warmup, thermal gaps, environment.

Nothing here imports pytest; NVML, torch and pandas are imported lazily where used. The records it
builds are config's pydantic models (config/records.py).
"""

from pytest_llenergy.energy.baseline import (
    BaselineCache,
    BaselineStore,
    MemoryStore,
    measure_baseline,
)
from pytest_llenergy.energy.baseline_reading import BaselineReading
from pytest_llenergy.energy.environment import collect_environment
from pytest_llenergy.energy.measurement import DeviceMeasurement, Measurement
from pytest_llenergy.energy.meter import EnergyMeter, Window
from pytest_llenergy.energy.sampler import Sampler, Timeseries
from pytest_llenergy.energy.sources import (
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
from pytest_llenergy.energy.thermal import GapOutcome, fixed_gap, wait_until_settled
from pytest_llenergy.energy.warmup import WarmupResult, run_warmup

__all__ = [
    "DEFAULT_TRACE",
    "BaselineCache",
    "BaselineReading",
    "BaselineStore",
    "DeviceInfo",
    "DeviceMeasurement",
    "EnergyMeter",
    "EnergySource",
    "EstimateSource",
    "GapOutcome",
    "MemoryStore",
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
