"""NVIDIA GPUs through NVML (``pynvml`` from the nvidia-ml-py package, imported lazily).

Energy: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ, updated about every 100 ms on H100/H200).
Power: field value ``NVML_FI_DEV_POWER_INSTANT``, falling back to ``nvmlDeviceGetPowerUsage``
(mW). The driver's own power samples (``nvmlDeviceGetSamples(NVML_TOTAL_POWER_SAMPLES)``,
~20 ms apart, ~2.4 s of history) are offered through :meth:`NvmlSource.drain_power_samples`.
Throttling: ``nvmlDeviceGetViolationStatus`` per perf policy (cumulative ns). Any NVML failure
during a read raises :class:`SourceError` naming the device and the call.

Devices: an explicit list of NVML indices, else ``CUDA_VISIBLE_DEVICES`` (indices or UUID
prefixes, as CUDA reads it: up to the first invalid entry), else all GPUs. Labels use the NVML
index (``gpu3``), which nvidia-smi shows and which stays stable across xdist workers.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_llenergy.energy.sources.base import BaseSource, DeviceInfo, PowerSamples, SourceError

#: Throttle causes: result name -> pynvml perf-policy constant name.
PERF_POLICIES: dict[str, str] = {
    "power": "NVML_PERF_POLICY_POWER",
    "thermal": "NVML_PERF_POLICY_THERMAL",
    "sync_boost": "NVML_PERF_POLICY_SYNC_BOOST",
    "board_limit": "NVML_PERF_POLICY_BOARD_LIMIT",
    "low_utilization": "NVML_PERF_POLICY_LOW_UTILIZATION",
    "reliability": "NVML_PERF_POLICY_RELIABILITY",
    "total_app_clocks": "NVML_PERF_POLICY_TOTAL_APP_CLOCKS",
    "total_base_clocks": "NVML_PERF_POLICY_TOTAL_BASE_CLOCKS",
}
_VALUE_ATTR = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
_MIB = 1024.0 * 1024.0


def nvml_value(value: Any, value_type: int) -> float:
    """The number held in an ``c_nvmlValue_t`` union of the given NVML value type."""
    return float(getattr(value, _VALUE_ATTR.get(int(value_type), "uiVal")))


def parse_visible_devices(spec: str, uuids: list[str]) -> list[int]:
    """NVML indices named by a ``CUDA_VISIBLE_DEVICES`` value (indices or UUID prefixes)."""
    chosen: list[int] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if entry.isdigit():
            idx = int(entry)
            if idx >= len(uuids):
                break
        else:
            matches = [i for i, u in enumerate(uuids) if entry and u.startswith(entry)]
            if len(matches) != 1:
                break
            idx = matches[0]
        if idx in chosen:
            break
        chosen.append(idx)
    return chosen


class NvmlSource(BaseSource):
    """GPU energy, power, throttling and auxiliary signals from NVML."""

    kind = "nvml"
    counter_period_s = 0.1

    def __init__(
        self, devices: list[int] | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(clock)
        try:
            import pynvml
        except ImportError as exc:
            raise SourceError(f"pynvml not installed ({exc})") from exc
        self._nv: Any = pynvml
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError, or e.g. NVMLLibraryMismatchError
            raise SourceError(f"NVML init failed: {exc}") from exc
        try:
            self._select(devices)
            self._probe()
        except pynvml.NVMLError as exc:
            self.close()
            raise SourceError(f"NVML device query failed: {exc}") from exc
        except SourceError:
            self.close()
            raise

    # -- setup -------------------------------------------------------------------------------
    def _select(self, devices: list[int] | None) -> None:
        nv = self._nv
        count = nv.nvmlDeviceGetCount()
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        uuids = [_text(nv.nvmlDeviceGetUUID(h)) for h in handles]
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        if devices is not None:
            bad = [i for i in devices if not 0 <= i < count]
            if bad:
                raise SourceError(f"no GPU with NVML index {bad} ({count} present)")
            chosen = list(devices)
        else:
            chosen = parse_visible_devices(env, uuids) if env is not None else list(range(count))
        if not chosen:
            raise SourceError(f"no GPU selected ({count} present, devices={devices}, "
                              f"CUDA_VISIBLE_DEVICES={env!r})")
        self._handles = [handles[i] for i in chosen]
        self._devices = [
            DeviceInfo(f"gpu{i}", _text(nv.nvmlDeviceGetName(handles[i])), uuids[i], i)
            for i in chosen
        ]

    def _supported(self, fn: Callable[[Any], Any]) -> bool:
        try:
            for h in self._handles:
                fn(h)
            return True
        except self._nv.NVMLError:
            return False
        except AttributeError:
            return False

    def _probe(self) -> None:
        nv = self._nv
        self.has_counter = self._supported(nv.nvmlDeviceGetTotalEnergyConsumption)
        self._field_power = self._supported(self._field_power_one)
        if not self._field_power and not self._supported(nv.nvmlDeviceGetPowerUsage):
            raise SourceError("NVML reports no power reading for the selected GPUs")
        self._policies = {}
        for name, const in PERF_POLICIES.items():
            policy = getattr(nv, const, None)
            if policy is not None and self._supported(functools.partial(_violation_status, nv, policy)):
                self._policies[name] = policy
        self._reasons_fn = next(
            (getattr(nv, n) for n in ("nvmlDeviceGetCurrentClocksEventReasons",
                                      "nvmlDeviceGetCurrentClocksThrottleReasons")
             if hasattr(nv, n) and self._supported(getattr(nv, n))),
            None,
        )
        self._aux = {name: fn for name, fn in self._aux_readers().items() if self._supported(fn)}
        self._samples_ok = hasattr(nv, "nvmlDeviceGetSamples") and self._probe_samples()

    def _aux_readers(self) -> dict[str, Callable[[Any], float]]:
        nv = self._nv
        readers: dict[str, Callable[[Any], float]] = {
            "memory_used_mb": lambda h: nv.nvmlDeviceGetMemoryInfo(h).used / _MIB,
            "gpu_util_pct": lambda h: float(nv.nvmlDeviceGetUtilizationRates(h).gpu),
            "mem_util_pct": lambda h: float(nv.nvmlDeviceGetUtilizationRates(h).memory),
            "temperature_c": lambda h: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            "sm_clock_mhz": lambda h: float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
            "pstate": lambda h: float(nv.nvmlDeviceGetPerformanceState(h)),
        }
        reasons = self._reasons_fn
        if reasons is not None:
            readers["clock_event_reasons"] = lambda h: float(reasons(h))
        return readers

    def _probe_samples(self) -> bool:
        """Whether the driver buffer works, and which clock its timestamps use.

        NVML documents them as CPU timestamps in microseconds (wall clock on Linux); should a
        driver use the monotonic clock instead, the newest sample tells, as it is at most a few
        seconds old. Neither within a minute of now: the buffer is not used.
        """
        nv = self._nv
        self._ts_clock: Callable[[], float] = time.time
        newest = 0
        try:
            for h in self._handles:
                _, samples = nv.nvmlDeviceGetSamples(h, nv.NVML_TOTAL_POWER_SAMPLES, 0)
                newest = max([newest, *(int(x.timeStamp) for x in samples)])
        except nv.NVMLError as exc:
            return getattr(exc, "value", None) == getattr(nv, "NVML_ERROR_NOT_FOUND", -1)
        for ref in (time.time, time.monotonic):
            if abs(newest / 1e6 - ref()) < 60.0:
                self._ts_clock = ref
                return True
        return False

    # -- reads -------------------------------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        return list(self._devices)

    @property
    def handles(self) -> list[Any]:
        """The NVML handles of the selected devices (for environment queries)."""
        return list(self._handles)

    @property
    def supports_power_samples(self) -> bool:
        return self._samples_ok

    def _each(self, what: str, fn: Callable[[Any], float]) -> np.ndarray:
        out = np.empty(len(self._handles))
        for i, h in enumerate(self._handles):
            try:
                out[i] = fn(h)
            except self._nv.NVMLError as exc:
                raise SourceError(f"{self._devices[i].label}: {what} failed: {exc}") from exc
        return out

    def _field_power_one(self, handle: Any) -> float:
        nv = self._nv
        fv = nv.nvmlDeviceGetFieldValues(handle, [nv.NVML_FI_DEV_POWER_INSTANT])[0]
        if fv.nvmlReturn != nv.NVML_SUCCESS:
            raise nv.NVMLError(fv.nvmlReturn)
        return nvml_value(fv.value, fv.valueType)

    def read_counters(self) -> np.ndarray | None:
        if not self.has_counter:
            return None
        return self._each("energy counter", self._nv.nvmlDeviceGetTotalEnergyConsumption) / 1e3

    def read_power(self) -> np.ndarray:
        fn = self._field_power_one if self._field_power else self._nv.nvmlDeviceGetPowerUsage
        return self._each("power", fn) / 1e3

    def read_aux(self) -> dict[str, np.ndarray]:
        return {name: self._each(name, fn) for name, fn in self._aux.items()}

    def read_throttle(self) -> dict[str, np.ndarray] | None:
        if not self._policies:
            return None
        nv = self._nv
        out: dict[str, np.ndarray] = {}
        for name, policy in self._policies.items():
            vals = np.empty(len(self._handles), dtype=np.int64)
            for i, h in enumerate(self._handles):
                try:
                    vals[i] = nv.nvmlDeviceGetViolationStatus(h, policy).violationTime
                except nv.NVMLError as exc:
                    raise SourceError(f"{self._devices[i].label}: violation status failed: {exc}") from exc
            out[name] = vals
        return out

    def drain_power_samples(self, since: float | None = None) -> PowerSamples | None:
        """Driver power samples newer than ``since`` on the source clock; None when unsupported.

        Driver timestamps (wall-clock microseconds) are mapped onto the source clock. With
        several GPUs the first GPU's timestamps form the time base and the others are linearly
        interpolated onto it (fetched from 0.1 s earlier, to bracket the first sample).
        """
        if not self._samples_ok:
            return None
        offset = self._clock_offset()
        since_us = 0 if since is None else max(int((since + offset) * 1e6) + 1, 0)
        series = [self._drain_one(i, since_us if i == 0 else max(since_us - 100_000, 0))
                  for i in range(len(self._handles))]
        t_base, p_base = series[0]
        p = np.empty((t_base.size, len(series)))
        p[:, 0] = p_base
        for i, (t_i, p_i) in enumerate(series[1:], start=1):
            p[:, i] = np.interp(t_base, t_i, p_i) if t_i.size else np.nan
        return t_base / 1e6 - offset, p

    def _clock_offset(self) -> float:
        """Driver timestamp clock minus the source clock, from the tightest of three bracketed
        reads (a preempted read would shift every mapped timestamp by the preemption)."""
        best = (float("inf"), 0.0)
        for _ in range(3):
            a = self.clock()
            ref = self._ts_clock()
            b = self.clock()
            if b - a < best[0]:
                best = (b - a, ref - 0.5 * (a + b))
        return best[1]

    def _drain_one(self, i: int, since_us: int) -> tuple[np.ndarray, np.ndarray]:
        nv, h = self._nv, self._handles[i]
        try:
            vtype, samples = nv.nvmlDeviceGetSamples(h, nv.NVML_TOTAL_POWER_SAMPLES, since_us)
        except nv.NVMLError as exc:
            if getattr(exc, "value", None) != getattr(nv, "NVML_ERROR_NOT_FOUND", -1):
                raise SourceError(f"{self._devices[i].label}: power samples failed: {exc}") from exc
            samples, vtype = [], 1  # NOT_FOUND: nothing newer than since_us
        t = np.fromiter((s.timeStamp for s in samples), dtype=float, count=len(samples))
        p = np.fromiter((nvml_value(s.sampleValue, vtype) for s in samples), dtype=float,
                        count=len(samples)) / 1e3
        order = np.argsort(t, kind="stable")
        return t[order], p[order]

    def close(self) -> None:
        if getattr(self, "_nv", None) is not None:
            try:
                self._nv.nvmlShutdown()
            except self._nv.NVMLError:
                pass
            self._nv = None


def _violation_status(nv: Any, policy: Any, handle: Any) -> Any:
    return nv.nvmlDeviceGetViolationStatus(handle, policy)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
