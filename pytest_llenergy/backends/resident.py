"""Loaded backend sessions kept resident in a process: least recently used first out, within
``reuse.max_resident`` and a memory budget per device kind (``reuse.memory_budget``).

A session that would not fit evicts others (closed, memory freed and checked) before it loads;
when its measured footprint turns out larger than estimated, others are evicted after. Every
load says whether the model was loaded, resident, reloaded or cold-started, and why.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_llenergy.backends.base import Backend, Footprint, Session
from pytest_llenergy.backends.memory import device_in_use_bytes, device_total_bytes

if TYPE_CHECKING:
    from pytest_llenergy.config.experiment import ExperimentConfig

GiB = 2**30


@dataclass
class Resident:
    key: str
    model: str
    session: Session
    footprint: Footprint


@dataclass
class LoadCounts:
    """What the process spent on loads (for the session's wall-time breakdown)."""

    loads: int = 0
    load_s: float = 0.0
    reuses: int = 0
    evictions: int = 0
    evict_s: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"loads": self.loads, "load_s": self.load_s, "reuses": self.reuses, "evictions": self.evictions,
                "evict_s": self.evict_s, "by_status": dict(self.by_status)}


def _size(n: int | None) -> str:
    return "?" if n is None else f"{n / GiB:.2f} GiB"


class ResidentSessions:
    """Up to ``max_resident`` sessions, keyed by backend load key; ``budget`` is ("fraction", f) or ("bytes", n)."""

    def __init__(self, max_resident: int = 4, budget: tuple[str, float] = ("fraction", 0.8),
                 total_bytes: Callable[[str], int | None] = device_total_bytes,
                 in_use_bytes: Callable[[str], int | None] = device_in_use_bytes) -> None:
        self.max_resident, self.budget = max_resident, budget
        self._total, self._in_use = total_bytes, in_use_bytes
        self.resident: OrderedDict[str, Resident] = OrderedDict()
        self.known: dict[str, Footprint] = {}
        self.ever_loaded: set[str] = set()
        self.counts = LoadCounts()

    # --- budget ---------------------------------------------------------------------------------
    def budget_bytes(self, device: str) -> int | None:
        kind, value = self.budget
        if kind == "bytes":
            return int(value)
        total = self._total(device)
        return None if total is None else int(value * total)

    def used_bytes(self, device: str, exclude: str | None = None) -> int:
        return sum(r.footprint.bytes for k, r in self.resident.items() if r.footprint.device == device and k != exclude)

    def fits(self, footprint: Footprint, exclude: str | None = None) -> bool:
        budget = self.budget_bytes(footprint.device)
        return budget is None or self.used_bytes(footprint.device, exclude) + footprint.bytes <= budget

    # --- the one entry point --------------------------------------------------------------------
    def get(self, backend: Backend, experiment: ExperimentConfig, key: str, force_cold: bool = False) -> tuple[Session, dict[str, Any]]:
        """The session for ``experiment`` (loading it when needed) and its load record (``LoadInfo`` fields)."""
        evicted: list[dict[str, Any]] = []
        warnings: list[str] = []
        if not force_cold and key in self.resident:
            self.resident.move_to_end(key)
            self.counts.reuses += 1
            self._count("resident")
            entry = self.resident[key]
            return entry.session, {"cold": False, "load_time_s": None, "status": "resident",
                                   "reason": f"resident in this process ({len(self.resident)} resident)",
                                   "footprint_bytes": entry.footprint.bytes, "footprint_device": entry.footprint.device,
                                   "resident_sessions": len(self.resident)}
        if force_cold:
            for other in list(self.resident):
                evicted.append(self._evict(other, "force_cold_start: every item loads afresh", warnings))
            status, reason = "cold_start", "force_cold_start is on"
        else:
            status = "reloaded" if key in self.ever_loaded else "loaded"
            reason = "evicted earlier in this process" if status == "reloaded" else "first use in this process"
            self._make_room(backend, experiment, key, evicted, warnings)
        started = time.perf_counter()
        session = backend.load(experiment)
        load_time = getattr(session, "load_time_s", None) or time.perf_counter() - started
        footprint = self._footprint(session, backend, experiment, key)
        self.resident[key] = Resident(key, _model_name(experiment), session, footprint)
        self.known[key] = footprint
        self.ever_loaded.add(key)
        for other in [k for k in self.resident if k != key]:
            if self.fits(footprint, exclude=key) and len(self.resident) <= self.max_resident:
                break
            evicted.append(self._evict(other, f"over the memory budget after loading {_model_name(experiment)} "
                                       f"({_size(footprint.bytes)}, more than estimated)", warnings))
        if not self.fits(footprint, exclude=key):
            warnings.append(f"{_model_name(experiment)} alone ({_size(footprint.bytes)}) exceeds the memory budget "
                            f"({_size(self.budget_bytes(footprint.device))} on {footprint.device}); raise reuse.memory_budget")
        self.counts.loads += 1
        self.counts.load_s += load_time
        self._count(status)
        return session, {"cold": True, "load_time_s": load_time, "status": status, "reason": reason,
                         "evicted": evicted, "footprint_bytes": footprint.bytes, "footprint_device": footprint.device,
                         "resident_sessions": len(self.resident), "warnings": warnings}

    def close_all(self, reason: str = "session end") -> None:
        for key in list(self.resident):
            self._evict(key, reason, [], count=False)

    # --- helpers ----------------------------------------------------------------------------------
    def _count(self, status: str) -> None:
        self.counts.by_status[status] = self.counts.by_status.get(status, 0) + 1

    def _make_room(self, backend: Backend, experiment: ExperimentConfig, key: str, evicted: list[dict[str, Any]], warnings: list[str]) -> None:
        """Evict least recently used sessions until the new one fits by count and by memory."""
        while len(self.resident) >= self.max_resident:
            oldest = next(iter(self.resident))
            evicted.append(self._evict(oldest, f"max_resident {self.max_resident} reached", warnings))
        if not self.resident:
            return  # nothing to evict: no estimate needed
        estimate = self._estimate(backend, experiment, key)
        if estimate is None:
            return
        budget = self.budget_bytes(estimate.device)
        while self.resident and not self.fits(estimate):
            oldest = next(iter(self.resident))
            used = self.used_bytes(estimate.device)
            evicted.append(self._evict(oldest, f"memory budget: {_size(estimate.bytes)} needed ({estimate.detail}), "
                                       f"{_size(used)} of {_size(budget)} in use on {estimate.device}", warnings))

    def _estimate(self, backend: Backend, experiment: ExperimentConfig, key: str) -> Footprint | None:
        if key in self.known:
            return self.known[key]
        estimate = getattr(backend, "estimate_footprint", None)
        if callable(estimate):
            try:
                found = estimate(experiment)
            except Exception:  # noqa: BLE001 - an estimate is optional
                found = None
            if found is not None:
                return found
        same = [r.footprint for r in self.resident.values()]  # nothing better: assume it is like the largest
        return max(same, key=lambda f: f.bytes) if same else None

    def _footprint(self, session: Session, backend: Backend, experiment: ExperimentConfig, key: str) -> Footprint:
        measure = getattr(session, "footprint", None)
        if callable(measure):
            try:
                return measure()
            except Exception:  # noqa: BLE001
                pass
        return self._estimate(backend, experiment, key) or Footprint(0, "cpu", "unknown")

    def _evict(self, key: str, reason: str, warnings: list[str], count: bool = True) -> dict[str, Any]:
        """Close one session, free its memory and check how much came back (CUDA)."""
        entry = self.resident.pop(key)
        started = time.perf_counter()
        device = entry.footprint.device
        before = self._in_use(device)
        try:
            entry.session.close()
        except Exception as exc:  # noqa: BLE001 - a failing close must not stop the campaign
            warnings.append(f"closing {entry.model} failed: {type(exc).__name__}: {exc}")
        outcome = getattr(entry.session, "shutdown_outcome", None)
        del entry.session
        gc.collect()
        torch = sys.modules.get("torch")
        if device == "cuda" and torch is not None:
            try:
                torch.cuda.empty_cache()
            except Exception:  # noqa: BLE001
                pass
        after = self._in_use(device)
        freed = None if before is None or after is None else before - after
        if freed is not None and entry.footprint.bytes and freed < 0.5 * entry.footprint.bytes:
            warnings.append(f"evicting {entry.model} freed {_size(freed)} of its {_size(entry.footprint.bytes)} "
                            "footprint (memory still held elsewhere?)")
        close_s = time.perf_counter() - started
        if count:
            self.counts.evictions += 1
            self.counts.evict_s += close_s
        return {"model": entry.model, "load_key": key, "reason": reason, "footprint_bytes": entry.footprint.bytes,
                "freed_bytes": freed, "close_s": close_s, "shutdown": outcome if isinstance(outcome, str) else None}


def _model_name(experiment: ExperimentConfig) -> str:
    model = getattr(experiment, "model", None)
    return getattr(model, "name", None) or "?"
