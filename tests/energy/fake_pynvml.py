"""A fake ``pynvml`` module, modelled on nvidia-ml-py, for driving ``NvmlSource`` without a GPU.

Behaviour follows the real library and an H100/H200: the energy counter (mJ) and the
instantaneous power advance only every ``counter_period`` (100 ms); the driver keeps power
samples every 20 ms for 2.4 s, timestamped in wall-clock microseconds; violation counters
accumulate nanoseconds at a configurable fraction of time per perf policy. Field values and
samples are returned as ctypes structures with the real field names. Faults: ``lost_after``
(seconds after creation) makes every device call raise ``NVMLError(NVML_ERROR_GPU_IS_LOST)``.

Install it with ``monkeypatch.setitem(sys.modules, "pynvml", fake.module)``.
"""

from __future__ import annotations

import ctypes
import math
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIBRARY_NOT_FOUND = 12
_ERRORS = {1: "Uninitialized", 2: "Invalid Argument", 3: "Not Supported", 6: "Not Found",
           12: "NVML Shared Library Not Found", 15: "GPU is lost"}

CONSTANTS = {
    "NVML_SUCCESS": NVML_SUCCESS, "NVML_ERROR_UNINITIALIZED": 1, "NVML_ERROR_INVALID_ARGUMENT": 2,
    "NVML_ERROR_NOT_SUPPORTED": 3, "NVML_ERROR_NOT_FOUND": 6, "NVML_ERROR_GPU_IS_LOST": 15,
    "NVML_ERROR_LIBRARY_NOT_FOUND": 12,
    "NVML_VALUE_TYPE_DOUBLE": 0, "NVML_VALUE_TYPE_UNSIGNED_INT": 1,
    "NVML_VALUE_TYPE_UNSIGNED_LONG_LONG": 3,
    "NVML_PERF_POLICY_POWER": 0, "NVML_PERF_POLICY_THERMAL": 1, "NVML_PERF_POLICY_SYNC_BOOST": 2,
    "NVML_PERF_POLICY_BOARD_LIMIT": 3, "NVML_PERF_POLICY_LOW_UTILIZATION": 4,
    "NVML_PERF_POLICY_RELIABILITY": 5, "NVML_PERF_POLICY_TOTAL_APP_CLOCKS": 10,
    "NVML_PERF_POLICY_TOTAL_BASE_CLOCKS": 11,
    "NVML_TOTAL_POWER_SAMPLES": 0, "NVML_FI_DEV_POWER_INSTANT": 186,
    "NVML_TEMPERATURE_GPU": 0, "NVML_CLOCK_SM": 1, "NVML_CLOCK_MEM": 2,
}


class NVMLError(Exception):
    """Like pynvml.NVMLError: carries the NVML return code in ``value``."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _ERRORS.get(self.value, f"NVML Error with code {self.value}")


class c_nvmlValue_t(ctypes.Union):
    _fields_ = [("dVal", ctypes.c_double), ("uiVal", ctypes.c_uint), ("ulVal", ctypes.c_ulong),
                ("ullVal", ctypes.c_ulonglong), ("sllVal", ctypes.c_longlong),
                ("siVal", ctypes.c_int), ("usVal", ctypes.c_ushort)]


class c_nvmlSample_t(ctypes.Structure):
    _fields_ = [("timeStamp", ctypes.c_ulonglong), ("sampleValue", c_nvmlValue_t)]


class c_nvmlViolationTime_t(ctypes.Structure):
    _fields_ = [("referenceTime", ctypes.c_ulonglong), ("violationTime", ctypes.c_ulonglong)]


class c_nvmlFieldValue_t(ctypes.Structure):
    _fields_ = [("fieldId", ctypes.c_uint32), ("scopeId", ctypes.c_uint32),
                ("timestamp", ctypes.c_int64), ("latencyUsec", ctypes.c_int64),
                ("valueType", ctypes.c_uint), ("nvmlReturn", ctypes.c_uint),
                ("value", c_nvmlValue_t)]


@dataclass
class FakeGpu:
    """One GPU: ``power`` is watts, constant or a function of seconds since creation."""

    index: int
    power: float | Callable[[float], float] = 300.0
    name: str = "NVIDIA H200"
    uuid: str = ""
    memory_used_mb: float = 1000.0
    util_pct: int = 90
    temperature_c: int = 45
    pstate: int = 0
    sm_clock_mhz: int = 1980
    #: fraction of time throttled per perf policy id (e.g. {0: 0.5} = power-capped half the time)
    violation: dict[int, float] = field(default_factory=dict)
    lost: bool = True  # affected by ``lost_after``

    def __post_init__(self) -> None:
        self.uuid = self.uuid or f"GPU-{self.index:08x}-1111-2222-3333-444455556666"

    def watts(self, t: float) -> float:
        return float(self.power(t)) if callable(self.power) else float(self.power)


class FakeNvml:
    """The fake library's state; ``module`` is what gets installed as ``pynvml``."""

    def __init__(
        self,
        gpus: int | list[FakeGpu] = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        lost_after: float | None = None,
        energy: bool = True,
        field_power: bool = True,
        samples: bool = True,
        init_error: int | None = None,
        counter_period: float = 0.1,
        sample_period: float = 0.02,
        history: float = 2.4,
        timestamps: str = "wall",
    ) -> None:
        self.gpus = [FakeGpu(i) for i in range(gpus)] if isinstance(gpus, int) else gpus
        self.clock, self.lost_after = clock, lost_after
        self.energy, self.field_power, self.samples = energy, field_power, samples
        self.init_error = init_error
        self.counter_period, self.sample_period, self.history = counter_period, sample_period, history
        self.t0 = clock()
        # sample timestamps: wall-clock µs like the real driver; "monotonic" / "bogus" for tests
        base = {"wall": time.time(), "monotonic": time.monotonic(), "bogus": 12345.0}[timestamps]
        self.wall_offset = base - self.t0
        self.init_count = 0
        self.calls: dict[str, int] = {}
        self.module = self._build()

    # -- physics -------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock() - self.t0

    def quantised(self, t: float) -> float:
        return math.floor(t / self.counter_period + 1e-9) * self.counter_period

    def energy_j(self, gpu: FakeGpu, t: float) -> float:
        """Exact integral of the GPU's power from creation to ``t`` (1 ms midpoint rule)."""
        if not callable(gpu.power):
            return gpu.power * t
        n = max(int(t / 0.001), 1)
        dt = t / n
        return sum(gpu.watts((k + 0.5) * dt) for k in range(n)) * dt

    def _device(self, handle: Any, name: str) -> FakeGpu:
        if self.init_count <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.lost_after is not None and handle.lost and self.now() >= self.lost_after:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return handle

    # -- module --------------------------------------------------------------------------
    def _build(self) -> types.ModuleType:
        mod = types.ModuleType("pynvml")
        mod.__dict__.update(CONSTANTS)
        mod.NVMLError = NVMLError
        mod.c_nvmlFieldValue_t, mod.c_nvmlSample_t = c_nvmlFieldValue_t, c_nvmlSample_t
        for name in dir(self):
            if name.startswith("nvml"):
                setattr(mod, name, getattr(self, name))
        return mod

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        if self.init_count <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        self.init_count -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGpu:
        for g in self.gpus:
            if g.uuid == uuid:
                return g
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetName(self, h: FakeGpu) -> str:
        return self._device(h, "name").name

    def nvmlDeviceGetUUID(self, h: FakeGpu) -> str:
        return self._device(h, "uuid").uuid

    def nvmlDeviceGetIndex(self, h: FakeGpu) -> int:
        return self._device(h, "index").index

    def nvmlDeviceGetTotalEnergyConsumption(self, h: FakeGpu) -> int:
        g = self._device(h, "energy")
        if not self.energy:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return int(self.energy_j(g, self.quantised(self.now())) * 1e3)

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        g = self._device(h, "power_usage")
        return int(g.watts(self.quantised(self.now())) * 1e3)

    def nvmlDeviceGetFieldValues(self, h: FakeGpu, field_ids: list[Any]) -> Any:
        g = self._device(h, "field_values")
        values = (c_nvmlFieldValue_t * len(field_ids))()
        for i, fid in enumerate(field_ids):
            fid, scope = fid if isinstance(fid, tuple) else (fid, 0)
            v = values[i]
            v.fieldId, v.scopeId = fid, scope
            v.timestamp = int((self.clock() + self.wall_offset) * 1e6)
            if fid == CONSTANTS["NVML_FI_DEV_POWER_INSTANT"] and self.field_power:
                v.nvmlReturn, v.valueType = NVML_SUCCESS, 1
                v.value.uiVal = int(g.watts(self.quantised(self.now())) * 1e3)
            else:
                v.nvmlReturn = NVML_ERROR_NOT_SUPPORTED
        return values

    def nvmlDeviceGetSamples(self, h: FakeGpu, sampling_type: int, last_seen: int) -> tuple[int, list]:
        g = self._device(h, "samples")
        if not self.samples or sampling_type != 0:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        now = self.now()
        k_hi = math.floor(now / self.sample_period + 1e-9)
        k_lo = max(0, math.ceil((now - self.history) / self.sample_period))
        out = []
        for k in range(k_lo, k_hi + 1):
            t = k * self.sample_period
            ts = int(round((self.t0 + t + self.wall_offset) * 1e6))
            if ts > last_seen:
                s = c_nvmlSample_t()
                s.timeStamp = ts
                s.sampleValue.uiVal = int(g.watts(t) * 1e3)
                out.append(s)
        if not out:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return 1, out

    def nvmlDeviceGetViolationStatus(self, h: FakeGpu, policy: int) -> c_nvmlViolationTime_t:
        g = self._device(h, "violation")
        v = c_nvmlViolationTime_t()
        now = self.now()
        v.referenceTime = int((self.t0 + now + self.wall_offset) * 1e6)
        v.violationTime = int(g.violation.get(policy, 0.0) * now * 1e9)
        return v

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu) -> Any:
        g = self._device(h, "memory")
        total = 141 * 1024**3
        used = int(g.memory_used_mb * 1024**2)
        return types.SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> Any:
        g = self._device(h, "utilization")
        return types.SimpleNamespace(gpu=g.util_pct, memory=g.util_pct // 2)

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        return self._device(h, "temperature").temperature_c

    def nvmlDeviceGetClockInfo(self, h: FakeGpu, clock_type: int) -> int:
        g = self._device(h, "clock")
        return g.sm_clock_mhz if clock_type == 1 else 3201

    def nvmlDeviceGetMaxClockInfo(self, h: FakeGpu, clock_type: int) -> int:
        self._device(h, "max_clock")
        return 1980 if clock_type == 1 else 3201

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: FakeGpu) -> int:
        g = self._device(h, "reasons")
        return 0x4 if g.violation.get(0) else 0x0

    def nvmlDeviceGetPerformanceState(self, h: FakeGpu) -> int:
        return self._device(h, "pstate").pstate

    def nvmlDeviceGetEnforcedPowerLimit(self, h: FakeGpu) -> int:
        self._device(h, "limit")
        return 700_000

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: FakeGpu) -> int:
        self._device(h, "default_limit")
        return 700_000

    def nvmlDeviceGetPersistenceMode(self, h: FakeGpu) -> int:
        self._device(h, "persistence")
        return 1

    def nvmlDeviceGetMigMode(self, h: FakeGpu) -> list[int]:
        self._device(h, "mig")
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: FakeGpu) -> int:
        self._device(h, "pcie_gen")
        return 5

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: FakeGpu) -> int:
        self._device(h, "pcie_width")
        return 16

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.159.04"

    def nvmlSystemGetNVMLVersion(self) -> str:
        return "13.580.159.04"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 13000
