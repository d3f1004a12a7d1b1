"""Phase boundaries of transformers ``generate``: a logits processor that stamps every step.

``generate`` calls its logits processors once per step, right after that step's forward pass: the
first call of a call to ``generate`` ends the prefill (the prompt's forward pass; its logits give
the first token), every later call ends one decode step. On CUDA the stamp synchronises first, so
it marks when the GPU finished (``generate`` already synchronises once per step to test its
stopping criteria, so this adds no stall). Prefill = [generate called, first stamp]; decode =
[first stamp, generate returned].
"""

from __future__ import annotations

from bisect import bisect_left
from time import perf_counter
from typing import Any

from pytest_llenergy.config.timeline import PhaseTimeline, RequestTiming

SOURCE = "transformers logits-processor hook (first call ends the prefill; perf_counter, CUDA-synchronised)"


class PhaseClock:
    """A pass-through logits processor that records when each generation step's logits were ready."""

    def __init__(self, sync: Any = None) -> None:
        self.sync = sync
        self.times: list[float] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.sync is not None:
            self.sync()
        self.times.append(perf_counter())
        return scores


def with_phase_clock(kwargs: dict[str, Any], clock: PhaseClock) -> dict[str, Any]:
    """``generate`` keywords with ``clock`` appended to any logits processors already given."""
    from transformers import LogitsProcessorList

    given = kwargs.get("logits_processor")
    processors = LogitsProcessorList(list(given) if given is not None else [])
    processors.append(clock)
    return {**kwargs, "logits_processor": processors}


def build_timeline(clock: PhaseClock, starts: list[float], latencies: list[float],
                   batches: list[list[list[int]]], counts: list[int]) -> PhaseTimeline | None:
    """One request per prompt: its batch's start, first step and end (None when a batch has no stamp)."""
    requests: list[RequestTiming] = []
    row = 0
    for k, (began, latency, batch) in enumerate(zip(starts, latencies, batches)):
        end = began + latency
        i = bisect_left(clock.times, began)
        if i >= len(clock.times) or clock.times[i] > end:
            return None
        j = bisect_left(clock.times, end)
        steps = tuple(clock.times[i + 1 : j])
        for r, prompt in enumerate(batch):
            requests.append(RequestTiming(f"b{k}r{r}", began, clock.times[i], end, len(prompt),
                                          counts[row] if row < len(counts) else 0, step_s=steps))
            row += 1
    return PhaseTimeline(clock="perf_counter", source=SOURCE, requests=requests,
                         max_batch=max((len(b) for b in batches), default=None))
