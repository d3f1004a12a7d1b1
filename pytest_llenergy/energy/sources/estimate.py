"""An estimate for machines with no readable energy counter (every figure labelled estimated).

Model: power = (CPU seconds the current process used, all its threads, user + system, per
wall second) x ``cpu_core_power_w`` watts per busy core. The default of 10 W per busy core is
a server-class figure: a 200-280 W TDP part with 20-28 cores draws roughly 10 W per fully busy
core. It is a marginal, process-attributed estimate: it ignores idle/static power, other
processes, DRAM, GPUs and turbo/frequency effects. Override the figure for your CPU
(``cpu_core_power_w``). Good enough to compare runs on one machine, not to report joules.

The process CPU time (``time.process_time``: nanosecond clock) is the source's energy counter, so
a window of a few ms still has a figure: CPU seconds between its edges x watts, less the CPU time
of the plugin's own sampler thread (:meth:`EstimateSource.overhead_j`). Other threads' CPU time is
brought up to date at scheduler ticks, so the counter is treated as one that moves every
``CPU_TICK_S`` (its quantisation is the window's uncertainty).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_llenergy.energy.sources.base import BaseSource, DeviceInfo, RateFromCounter

DEFAULT_CPU_CORE_POWER_W = 10.0


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None


#: Scheduler tick (HZ=250) at which other running threads' CPU time is brought up to date.
CPU_TICK_S = 0.004


class EstimateSource(BaseSource):
    """Process CPU time x watts per core: a CPU-time counter, ``estimated=True``."""

    kind = "estimate"
    estimated = True
    has_counter = True
    counter_period_s = CPU_TICK_S
    rate_from_counter = True

    def __init__(
        self,
        cpu_core_power_w: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        process: Any = None,
    ) -> None:
        super().__init__(clock)
        watts = DEFAULT_CPU_CORE_POWER_W if cpu_core_power_w is None else float(cpu_core_power_w)
        if not watts > 0:
            raise ValueError(f"cpu_core_power_w must be > 0, got {cpu_core_power_w}")
        self.cpu_core_power_w = watts
        self._process = process  # a psutil.Process-like object (tests); None: this process's CPU clock
        self._device = DeviceInfo("cpu-estimate", name=cpu_model(), index=0)
        self._power = RateFromCounter(self._cpu_joules, self.clock)

    def _cpu_seconds(self) -> float:
        if self._process is None:
            return time.process_time()
        t = self._process.cpu_times()
        return float(t.user + t.system)

    def _cpu_joules(self) -> np.ndarray:
        return np.array([self._cpu_seconds() * self.cpu_core_power_w])

    def devices(self) -> list[DeviceInfo]:
        return [self._device]

    def read_counters(self) -> np.ndarray:
        return self._cpu_joules()

    def read_power(self) -> np.ndarray:
        return self._power()

    def restart_rate(self) -> None:
        self._power.restart()

    def overhead_j(self, sampler_cpu_s: float) -> np.ndarray:
        """Joules the counter charged for the sampler thread's own CPU time (not the measured code's)."""
        return np.array([max(sampler_cpu_s, 0.0) * self.cpu_core_power_w])
