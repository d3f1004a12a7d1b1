"""What a vLLM engine holds: its whole ``gpu_memory_utilization`` reservation on every GPU it uses.

vLLM reserves that share of each GPU's memory at start-up (weights, activations, KV cache), so two
engines can share a GPU only when their reservations fit together. On the CPU build the KV cache
is ``VLLM_CPU_KVCACHE_SPACE`` GiB (default 4), which is what is counted there.
"""

from __future__ import annotations

import os
from typing import Any

from pytest_llenergy.backends.base import Footprint
from pytest_llenergy.backends.memory import gpu_bytes, reserved_share

#: vLLM's own default for gpu_memory_utilization
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
DEFAULT_CPU_KVCACHE_GIB = 4.0


def vllm_footprint(experiment: Any, resolved: dict[str, Any] | None = None, device: str | None = None,
                   gpu_total: int | None = None) -> Footprint | None:
    """The engine's reservation: resolved settings when loaded, else the experiment's (vLLM defaults)."""
    resolved = resolved or {}
    section = experiment.vllm
    device = device or resolved.get("device_config", {}).get("device_type") or ("cuda" if gpu_bytes() else "cpu")
    if device == "cpu":
        try:
            gib = float(os.environ.get("VLLM_CPU_KVCACHE_SPACE") or DEFAULT_CPU_KVCACHE_GIB)
        except ValueError:
            gib = DEFAULT_CPU_KVCACHE_GIB
        gib = gib or DEFAULT_CPU_KVCACHE_GIB
        return Footprint(int(gib * 2**30), "cpu", f"VLLM_CPU_KVCACHE_SPACE {gib:g} GiB")
    share = (resolved.get("cache_config", {}).get("gpu_memory_utilization") or getattr(section, "gpu_memory_utilization", None)
             or DEFAULT_GPU_MEMORY_UTILIZATION)
    gpus = (getattr(section, "tensor_parallel_size", None) or 1) * (getattr(section, "pipeline_parallel_size", None) or 1)
    return reserved_share(share, "gpu_memory_utilization", gpu_total if gpu_total is not None else gpu_bytes(), gpus)
