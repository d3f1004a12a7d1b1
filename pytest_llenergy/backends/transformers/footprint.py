"""Memory a transformers session holds, measured after loading and estimated before it.

Held: the parameters and buffers of the model (and assistant), plus on CUDA the extra memory the
last run peaked at (KV cache, activations). Estimated: the parameter bytes of the model built on
the meta device from its config (no memory, no download), for unquantised loads.
"""

from __future__ import annotations

import sys
from typing import Any

from pytest_llenergy.backends.base import Footprint
from pytest_llenergy.backends.memory import module_bytes


def session_footprint(model: Any, assistant: Any, cuda_devices: list[Any]) -> Footprint:
    """Parameters + buffers, and on CUDA the last run's peak beyond them."""
    weights = module_bytes(model) + module_bytes(assistant)
    if not cuda_devices:
        return Footprint(weights, "cpu", "parameters + buffers")
    torch = sys.modules["torch"]
    peak = sum(int(torch.cuda.max_memory_allocated(d)) for d in cuda_devices)
    return Footprint(max(weights, peak), "cuda", "parameters + buffers, or the last run's peak when larger")


def estimate_footprint(experiment: Any) -> Footprint | None:
    """Parameter bytes of the experiment's model at its precision; None when it cannot be told cheaply."""
    try:
        import torch

        from pytest_llenergy.backends.transformers.loading import (
            causal_lm_class,
            plan_load,
            random_config,
        )

        plan = plan_load(experiment)
        if "quantization_config" in plan.kwargs:
            return None
        if plan.weights == "random":
            config, _ = random_config(plan.name)
        else:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(plan.name, trust_remote_code=experiment.transformers.trust_remote_code)
        dtype = plan.kwargs.get("dtype")
        with torch.device("meta"):
            model = causal_lm_class(config)._from_config(config, dtype=dtype if isinstance(dtype, torch.dtype) else None)
        size = module_bytes(model)
    except Exception:  # noqa: BLE001 - an estimate is optional; the measured footprint follows the load
        return None
    cuda = "cuda" in str(plan.device) or (plan.device == "auto" and torch.cuda.is_available())
    return Footprint(size, "cuda" if cuda else "cpu", "parameter bytes (estimate before loading)")
