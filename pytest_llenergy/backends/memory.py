"""Device memory figures for resident-session budgets: totals, memory in use, parameter bytes.

torch is only consulted when already imported (a CUDA session has imported it); CPU figures come
from the operating system.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pytest_llenergy.backends.base import Footprint


def _cuda() -> Any:
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return torch.cuda
    except Exception:  # noqa: BLE001 - a broken CUDA setup just means "no figure"
        return None
    return None


def device_total_bytes(device: str) -> int | None:
    """Total memory of ``cuda`` (all visible GPUs) or ``cpu`` (physical RAM); None when unknown."""
    if device == "cuda":
        cuda = _cuda()
        if cuda is None:
            return None
        try:
            return sum(int(cuda.get_device_properties(i).total_memory) for i in range(cuda.device_count()))
        except Exception:  # noqa: BLE001
            return None
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def reserved_share(share: float, setting: str, per_gpu: int | None, gpus: int) -> Footprint | None:
    """An engine that reserves ``share`` of each of its ``gpus`` GPUs' memory up front (vLLM's
    ``gpu_memory_utilization``, TensorRT-LLM's KV-cache fraction); None without a GPU figure."""
    if not per_gpu:
        return None
    return Footprint(int(share * per_gpu * gpus), "cuda",
                     f"{setting} {share:g} x {per_gpu / 2**30:.1f} GiB x {gpus} GPU(s)")


def gpu_bytes(index: int = 0) -> int | None:
    """Total memory of one GPU; None without CUDA."""
    cuda = _cuda()
    if cuda is None:
        return None
    try:
        return int(cuda.get_device_properties(index).total_memory)
    except Exception:  # noqa: BLE001
        return None


def device_in_use_bytes(device: str) -> int | None:
    """Memory in use now: CUDA memory taken on all visible GPUs (any process); None elsewhere."""
    if device != "cuda":
        return None
    cuda = _cuda()
    if cuda is None:
        return None
    try:
        total = 0
        for i in range(cuda.device_count()):
            free, size = cuda.mem_get_info(i)
            total += int(size) - int(free)
        return total
    except Exception:  # noqa: BLE001
        return None


def module_bytes(module: Any) -> int:
    """Bytes of a torch module's parameters and buffers."""
    if module is None:
        return 0
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)
