"""CPU package and DRAM energy through Linux powercap RAPL (``/sys/class/powercap``).

Each ``intel-rapl:N`` zone is a package (``name`` = ``package-N``); its ``intel-rapl:N:M``
subzones include ``dram``. ``energy_uj`` is a cumulative counter in microjoules that wraps at
``max_energy_range_uj``; reads are unwrapped assuming at most one wrap between two reads (the
sampler reads at least once a second, far below the wrap period of minutes). There is no
instantaneous power file: power is the counter difference between successive reads. The zone
files are usually root-only; the source is available only when every chosen file is readable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pytest_llenergy.energy.sources.base import BaseSource, DeviceInfo, RateFromCounter, SourceError

DEFAULT_ROOT = Path("/sys/class/powercap")


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def discover_domains(root: Path) -> list[tuple[str, Path]]:
    """``(label, zone dir)`` for every package and DRAM zone under ``root``."""
    found: list[tuple[str, Path]] = []
    for zone in sorted(root.glob("intel-rapl:*")):
        parts = zone.name.split(":")
        name_file = zone / "name"
        if not name_file.is_file():
            continue
        name = name_file.read_text().strip()
        if len(parts) == 2 and name.startswith("package-"):
            found.append((f"cpu-{name}", zone))
        elif len(parts) == 3 and name == "dram":
            found.append((f"cpu-dram-{parts[1]}", zone))
    return found


class RaplSource(BaseSource):
    """CPU package (and DRAM) energy counters; ``counter_period_s`` ~1 ms."""

    kind = "rapl"
    has_counter = True
    counter_period_s = 0.001
    rate_from_counter = True

    def __init__(
        self, root: str | Path | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(clock)
        root = Path(root) if root is not None else DEFAULT_ROOT
        domains = discover_domains(root) if root.is_dir() else []
        if not domains:
            raise SourceError(f"no RAPL package/dram zone under {root}")
        try:
            self._files = [zone / "energy_uj" for _, zone in domains]
            self._ranges = np.array([_read_int(zone / "max_energy_range_uj") for _, zone in domains],
                                    dtype=np.float64)
            self._last = self._raw()
        except (OSError, ValueError) as exc:
            raise SourceError(f"RAPL not readable under {root}: {exc}") from exc
        self._devices = [DeviceInfo(label, name=label, index=i) for i, (label, _) in enumerate(domains)]
        self._offset = np.zeros(len(domains))
        self._lock = threading.Lock()
        self._power = RateFromCounter(self._unwrapped_j, self.clock)

    def _raw(self) -> np.ndarray:
        return np.array([_read_int(f) for f in self._files], dtype=np.float64)

    def _unwrapped_j(self) -> np.ndarray:
        with self._lock:
            try:
                raw = self._raw()
            except (OSError, ValueError) as exc:
                raise SourceError(f"RAPL read failed: {exc}") from exc
            self._offset += np.where(raw < self._last, self._ranges, 0.0)
            self._last = raw
            return (raw + self._offset) / 1e6

    def devices(self) -> list[DeviceInfo]:
        return list(self._devices)

    def read_counters(self) -> np.ndarray:
        return self._unwrapped_j()

    def read_power(self) -> np.ndarray:
        return self._power()

    def restart_rate(self) -> None:
        self._power.restart()
