"""TTFT and inter-token latency of vLLM requests, read from the engine's per-request metrics."""

from __future__ import annotations

import typing
from typing import Any

from pytest_llenergy.backends.base import GenerationStats

#: the latency mode of TTFT/ITL taken from the engine's per-request timestamps
ENGINE_METRICS_MODE = "engine_metrics"


def engine_metrics_mode_supported() -> bool:
    """Whether GenerationStats names the ``engine_metrics`` latency mode (else TTFT/ITL stay unreported)."""
    hints = typing.get_type_hints(GenerationStats)
    return ENGINE_METRICS_MODE in typing.get_args(hints["latency_mode"])


def request_latencies(metrics: Any) -> tuple[float | None, float | None]:
    """(TTFT, mean inter-token latency) of one request from vLLM's metrics, or None where not recorded.

    vLLM V1 (`RequestStateStats`): ``first_token_latency`` (arrival to first token) and the
    first/last token timestamps with the generated token count. vLLM V0 (`RequestMetrics`):
    ``arrival_time``, ``first_token_time``, ``last_token_time``. The engine keeps no per-token
    times, so ITL is the request's mean gap: (last - first) / (tokens - 1).
    """
    if metrics is None:
        return None, None
    ttft = getattr(metrics, "first_token_latency", None)
    first = getattr(metrics, "first_token_ts", None)
    last = getattr(metrics, "last_token_ts", None)
    count = getattr(metrics, "num_generation_tokens", None)
    if first is None and getattr(metrics, "first_token_time", None) is not None:  # V0
        first, last = metrics.first_token_time, getattr(metrics, "last_token_time", None)
        arrival = getattr(metrics, "arrival_time", None)
        ttft = first - arrival if arrival is not None else None
    if ttft is not None and ttft <= 0:
        ttft = None
    itl = None
    if first and last and count and count > 1 and last >= first:
        itl = (last - first) / (count - 1)
    return ttft, itl
