"""The GPU priming burst before an NVML baseline: a short piece of GPU work so idle power is measured
in the state workloads run in (P0); a failure is recorded and warned about once, never swallowed."""

from __future__ import annotations

import warnings


def prime_gpu() -> str | None:
    """A short burst of GPU work so the baseline is measured in the state workloads run in (P0).

    None when the burst ran, else why not (the baseline may then sit at the deeper idle level).
    """
    try:
        import torch
    except ImportError:
        return "no GPU priming burst before the baseline: torch is not installed"
    if not torch.cuda.is_available():
        return "no GPU priming burst before the baseline: torch sees no CUDA device"
    try:
        a = torch.ones((1024, 1024), device="cuda")
        for _ in range(20):
            a = a @ a * 1e-3
        torch.cuda.synchronize()
    except RuntimeError as exc:  # CUDA errors (and out-of-memory) are RuntimeErrors
        return f"GPU priming burst before the baseline failed: {type(exc).__name__}: {exc}"
    return None


class GpuPrimer:
    """Runs :func:`prime_gpu` on demand and keeps its outcome: ``primed`` (None: never attempted)
    and ``problem`` (why the latest burst did not run; warned about once per distinct spell)."""

    def __init__(self) -> None:
        self.primed: bool | None = None
        self.problem = ""

    def prime(self) -> None:
        problem = prime_gpu()
        if problem and not self.problem:
            warnings.warn(f"llenergy: {problem}", RuntimeWarning, stacklevel=3)
        self.primed, self.problem = problem is None, problem or ""
