"""Phase timelines: when each request's prefill and decode ran, as the engine itself timed them.

Backends fill a :class:`PhaseTimeline` (``GenerationStats.timeline``); the energy layer maps it onto
a measured window's power series. Plain dataclasses: no pydantic, no numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: Host clocks an engine can stamp with (``time.perf_counter``, ``time.monotonic``, ``time.time``).
Clock = Literal["perf_counter", "monotonic", "time"]


@dataclass(frozen=True)
class RequestTiming:
    """One request: its prefill is [start_s, first_token_s], its decode [first_token_s, end_s]."""

    request_id: str
    start_s: float
    first_token_s: float
    end_s: float
    input_tokens: int
    output_tokens: int
    arrival_s: float | None = None
    #: timestamps of the decode steps after the first token (optional; else spread evenly)
    step_s: tuple[float, ...] | None = None

    @property
    def prefill_s(self) -> float:
        return self.first_token_s - self.start_s

    @property
    def decode_s(self) -> float:
        return self.end_s - self.first_token_s


@dataclass
class PhaseTimeline:
    """Every request of one measured run, on one host clock, and where the stamps came from."""

    clock: Clock
    source: str
    requests: list[RequestTiming] = field(default_factory=list)
    #: the engine's batch capacity (vLLM max_num_seqs), for the steady-state window
    max_batch: int | None = None
    #: what is known to be off about these stamps (recorded in the result's ``phase_info.flags``)
    caveats: tuple[str, ...] = ()

    def boundaries(self) -> tuple[float, float] | None:
        """(first start, last end) on the host clock, or None when empty."""
        if not self.requests:
            return None
        return min(r.start_s for r in self.requests), max(r.end_s for r in self.requests)
