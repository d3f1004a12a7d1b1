"""Phase timelines of TensorRT-LLM requests from the engine's own timing fields.

With ``SamplingParams(return_perf_metrics=True)`` (TensorRT-LLM >= 0.20) every completion carries
``request_perf_metrics.timing_metrics``: ``arrival_time``, ``first_scheduled_time``,
``first_token_time`` and ``last_token_time``, as ``datetime.timedelta`` on the C++ steady clock
(CLOCK_MONOTONIC on Linux, the clock of Python's ``time.monotonic``). Older versions have no such
fields: no timeline, and the result says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llenergy.config.timeline import PhaseTimeline, RequestTiming

SOURCE = "tensorrt_llm request_perf_metrics.timing_metrics (first_scheduled_time, first_token_time, last_token_time; steady clock)"
PERF_FLAG = "return_perf_metrics"


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else float(value)
    return seconds if seconds > 0 else None


def request_timing(output: Any, index: int) -> RequestTiming | None:
    """One request's boundaries, or None when the engine did not report them."""
    completions = getattr(output, "outputs", None) or []
    metrics = getattr(completions[0], "request_perf_metrics", None) if completions else None
    timing = getattr(metrics, "timing_metrics", None)
    start = _seconds(getattr(timing, "first_scheduled_time", None))
    first = _seconds(getattr(timing, "first_token_time", None))
    last = _seconds(getattr(timing, "last_token_time", None))
    if start is None or first is None or last is None:
        return None
    prompt = getattr(output, "prompt_token_ids", None) or []
    first = max(first, start)  # stamps out of order: no phase is negative
    return RequestTiming(str(getattr(output, "request_id", index)), start, first, max(last, first),
                         len(prompt), len(completions[0].token_ids),
                         arrival_s=_seconds(getattr(timing, "arrival_time", None)))


def timeline(outputs: Sequence[Any], max_batch: int | None = None) -> PhaseTimeline | None:
    """Every request's boundaries, or None when any is missing (never a partial timeline)."""
    requests = []
    for i, out in enumerate(outputs):
        r = request_timing(out, i) if out is not None else None
        if r is None:
            return None
        requests.append(r)
    return PhaseTimeline(clock="monotonic", source=SOURCE, requests=requests, max_batch=max_batch)
