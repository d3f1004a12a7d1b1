"""Serving workloads on vLLM: requests arrive over time (Poisson or a trace), open loop.

The engine is driven step by step (``llm_engine.add_request`` / ``step``): each request is added
when its arrival time comes, whatever the engine is doing, so queueing shows in TTFT as it would
behind a server. Arrival times are stamped on ``time.monotonic`` (the engine's metrics clock).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pytest_llenergy.backends.errors import BackendError


def poisson_offsets(n: int, rate_rps: float, seed: int) -> list[float]:
    """Arrival offsets (s) of ``n`` requests at ``rate_rps``: exponential gaps, the first at 0."""
    import numpy as np

    gaps = np.random.default_rng(seed).exponential(1.0 / rate_rps, size=n)
    gaps[0] = 0.0
    return np.cumsum(gaps).tolist()


def trace_offsets(path: str | Path, n: int, base_dir: str | Path | None = None) -> list[float]:
    """The first ``n`` arrival offsets (s) of a trace file, one number per line, non-decreasing."""
    path = Path(path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BackendError(f"{path}: arrival trace not readable ({exc.strerror or exc})") from None
    out: list[float] = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise BackendError(f"{path}:{number}: not a number of seconds: {text!r}") from None
        if value < 0 or (out and value < out[-1]):
            raise BackendError(f"{path}:{number}: arrival offsets must be >= 0 and non-decreasing (got {value})")
        out.append(value)
    if len(out) < n:
        raise BackendError(f"{path}: {len(out)} arrivals for num_prompts {n}: the trace needs one line per request")
    first = out[0]
    return [v - first for v in out[:n]]


def arrival_offsets(arrivals: Any, n: int, seed: int, base_dir: str | Path | None = None) -> list[float]:
    """Offsets for the experiment's ``workload.arrivals``."""
    if arrivals.process == "poisson":
        return poisson_offsets(n, arrivals.rate_rps, arrivals.seed if arrivals.seed is not None else seed)
    return trace_offsets(arrivals.trace, n, base_dir)


def serve(engine: Any, prompts: list[Any], params: Any, offsets: list[float], lora: Any = None
          ) -> tuple[list[Any], list[float], float]:
    """Run every prompt, each added at its offset; (outputs in prompt order, arrival stamps, duration)."""
    n = len(prompts)
    done: dict[str, Any] = {}
    arrivals = [0.0] * n
    extra = {"lora_request": lora} if lora is not None else {}
    started = time.monotonic()
    i = 0
    while i < n or engine.has_unfinished_requests():
        now = time.monotonic() - started
        while i < n and offsets[i] <= now:
            arrivals[i] = started + offsets[i]
            engine.add_request(f"lem-{i}", prompts[i], params, **extra)
            i += 1
        if engine.has_unfinished_requests():
            for out in engine.step():
                if getattr(out, "finished", False):
                    done[str(out.request_id)] = out
        elif i < n:
            time.sleep(max(0.0, offsets[i] - (time.monotonic() - started)))  # idle until the next arrival
    duration = time.monotonic() - started
    missing = [k for k in range(n) if f"lem-{k}" not in done]
    if missing:
        raise BackendError(f"vLLM finished without {len(missing)} of {n} requests (first: lem-{missing[0]})")
    return [done[f"lem-{k}"] for k in range(n)], arrivals, duration
