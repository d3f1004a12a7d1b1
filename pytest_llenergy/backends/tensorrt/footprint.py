"""What a TensorRT-LLM engine holds: weights plus a KV cache of ``kv_cache_free_gpu_memory_fraction``
(TensorRT-LLM's default 0.9) of the memory left free. Counted as that share of the GPU's memory
times the GPUs it spans, the most it can take."""

from __future__ import annotations

from typing import Any

from pytest_llenergy.backends.base import Footprint
from pytest_llenergy.backends.memory import gpu_bytes, reserved_share

DEFAULT_FREE_FRACTION = 0.9


def tensorrt_footprint(experiment: Any, gpu_total: int | None = None) -> Footprint | None:
    section = experiment.tensorrt
    share = section.kv_cache_free_gpu_memory_fraction or DEFAULT_FREE_FRACTION
    gpus = (getattr(section, "tp_size", None) or 1) * (getattr(section, "pp_size", None) or 1)
    return reserved_share(share, "kv_cache_free_gpu_memory_fraction", gpu_total if gpu_total is not None else gpu_bytes(),
                          gpus)
