"""Checks before a vLLM engine starts and its description afterwards: version, engine keywords, settings.

vllm is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
from importlib import metadata
from typing import Any

from pytest_llenergy.backends.errors import BackendError
from pytest_llenergy.backends.jsonable import jsonable

#: environment variables that change how vLLM runs; recorded in engine_info
RECORDED_ENV = (
    "VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND", "VLLM_HOST_IP",
    "VLLM_ATTENTION_BACKEND", "VLLM_USE_V1", "VLLM_WORKER_MULTIPROC_METHOD", "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
)
#: the effective engine settings recorded in engine_info["engine_resolved"], per part of `VllmConfig`
RESOLVED_PICKS = {
    "model_config": ("dtype", "max_model_len", "quantization", "enforce_eager", "seed"),
    "cache_config": ("block_size", "cache_dtype", "enable_prefix_caching", "num_gpu_blocks", "num_cpu_blocks",
                     "gpu_memory_utilization", "swap_space", "cpu_offload_gb", "kv_cache_memory_bytes"),
    "scheduler_config": ("max_num_seqs", "max_num_batched_tokens", "enable_chunked_prefill",
                         "chunked_prefill_enabled", "async_scheduling", "policy"),
    "parallel_config": ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size",
                        "distributed_executor_backend"),
    "compilation_config": ("mode", "level", "cudagraph_mode", "cudagraph_capture_sizes"),
    "device_config": ("device_type",),
}


def vllm_version() -> str:
    """The version of the vllm module in use (its ``__version__``), else the installed distribution's."""
    import vllm

    version = getattr(vllm, "__version__", None)
    if version:
        return str(version)
    for dist in ("vllm", "vllm-cpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def module_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _engine_arg_names() -> frozenset[str] | None:
    try:
        from vllm.engine.arg_utils import EngineArgs
    except ImportError:
        return None
    return frozenset(f.name for f in dataclasses.fields(EngineArgs))


def check_engine_kwargs(kwargs: dict[str, Any], version: str) -> None:
    """Fail before starting the engine when this vLLM does not know a keyword (never a silent drop)."""
    from pytest_llenergy.config.vllm_section import ENGINE_KEYS_OWNED

    names = _engine_arg_names()
    if names is None:
        return
    unknown = sorted(k for k in kwargs if k not in names)
    if unknown:
        where = [f"{k} (from `{ENGINE_KEYS_OWNED.get(k, 'vllm.extra.engine')}`)" for k in unknown]
        raise BackendError(f"vLLM {version} has no engine argument {', '.join(where)}; unset it for this vLLM")


def cpu_head_size_check(config: dict[str, Any]) -> None:
    """vLLM's CPU attention supports only some head sizes: say so before the engine fails mid-run."""
    try:
        from vllm.platforms import current_platform

        if not current_platform.is_cpu():
            return
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        supported = list(CPUAttentionBackend.get_supported_head_sizes())
    except (ImportError, AttributeError):
        return
    heads = config.get("num_attention_heads", config.get("n_head"))
    hidden = config.get("hidden_size", config.get("n_embd"))
    head_dim = config.get("head_dim") or (hidden // heads if heads and hidden else None)
    if head_dim is not None and head_dim not in supported:
        raise BackendError(
            f"vLLM's CPU attention does not support head size {head_dim} (supported: "
            f"{', '.join(map(str, supported))}); use a model with a supported head size"
        )


def resolved_settings(llm: Any) -> dict[str, Any]:
    """Effective engine settings after vLLM's own defaults (what actually ran)."""
    engine = getattr(llm, "llm_engine", None)
    config = getattr(engine, "vllm_config", None)
    if config is None:
        return {}
    out: dict[str, Any] = {}
    for part, names in RESOLVED_PICKS.items():
        section = getattr(config, part, None)
        if section is None:
            continue
        values = {n: jsonable(getattr(section, n)) for n in names if hasattr(section, n)}
        if values:
            out[part] = values
    spec = getattr(config, "speculative_config", None)
    if spec is not None:
        out["speculative_config"] = {
            n: jsonable(getattr(spec, n)) for n in ("method", "model", "num_speculative_tokens") if hasattr(spec, n)
        }
    return out
