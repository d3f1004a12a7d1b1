"""The steady-state window of a serving run (ML.ENERGY's definition) and its energy per token.

Steady state runs from when the engine first holds its full batch (``target`` running requests:
the engine's batch capacity, or the most it ever held when it never filled) to when the batch
last drops below that, i.e. when draining starts. Joules inside it, over the tokens generated
inside it, give the steady-state J per output token.

An open-loop serving run below the engine's capacity never fills the batch (on the H200, 64 req/s
held ~90 of vLLM's 1,024 slots): the moment it holds its most requests is a spike of a few ms, not a
state. There the steady state runs from the first completion (the ramp-up is over: requests now
leave as others arrive) to the last admission (draining starts), flagged ``open_loop``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pytest_llenergy.energy.attribution import token_work
from pytest_llenergy.energy.phases import WindowPhases


@dataclass(frozen=True)
class SteadyState:
    start_s: float
    end_s: float
    duration_s: float
    target_batch: int
    energy_j: float
    adjusted_energy_j: float | None
    output_tokens: float
    energy_per_output_token_j: float | None
    adjusted_energy_per_output_token_j: float | None
    uncertainty_j: float
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flags"] = list(self.flags)
        return d


def concurrency(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(event times, running requests from each time on)."""
    times = np.concatenate([starts, ends])
    delta = np.concatenate([np.ones(starts.size), -np.ones(ends.size)])
    order = np.lexsort((delta, times))  # at a tie, finish before start
    return times[order], np.cumsum(delta[order])


def steady_state(split: WindowPhases, capacity: int | None) -> SteadyState | None:
    """The steady-state window of ``split``; None without requests."""
    spans = split.spans
    if not spans:
        return None
    starts = np.array([s.start for s in spans])
    ends = np.array([s.end for s in spans])
    times, running = concurrency(starts, ends)
    peak = int(running.max())
    flags = []
    target = min(capacity, len(spans)) if capacity else peak
    start = end = math.nan
    if peak < target:
        flags.append(f"batch_never_full:{peak}<{target}")
        target = peak
        start, end = float(ends.min()), float(starts.max())
        if end > start:
            flags.append("open_loop")
    if not end > start:
        at_target = np.flatnonzero(running >= target)
        start = float(times[at_target[0]])
        end = float(times[at_target[-1] + 1]) if at_target[-1] + 1 < times.size else float(times[-1])
    if end <= start:
        flags.append("empty")
    model = split.model
    energy = float(np.diff(model.energy_at(np.array([start, end])))[0])
    duration = end - start
    base = split.baseline_w
    adjusted = energy - base * duration if base is not None else None
    _, dec = token_work(spans, np.array([start]), np.array([end]))
    firsts = sum(1 for s in spans if start <= s.first < end and s.output_tokens > 0)
    tokens = float(dec.sum()) + firsts
    dp = np.abs(model.power_at(np.array([start, end]) + model.period_s) - model.power_at(np.array([start, end]) - model.period_s))
    u = math.hypot(float(np.hypot(*(dp * model.period_s / math.sqrt(12.0)))), model.rel_uncertainty * energy)
    if duration < 10 * model.period_s:
        flags.append("short_steady_state")
    return SteadyState(start, end, duration, int(target), energy, adjusted, tokens,
                       energy / tokens if tokens else None,
                       adjusted / tokens if tokens and adjusted is not None else None, u, tuple(flags))
