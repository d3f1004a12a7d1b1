"""TensorRT-LLM objects from a build plan (:mod:`.tensorrt_args`): BuildConfig, QuantConfig, LLM class, SamplingParams.

Each class is looked up wherever this TensorRT-LLM version keeps it, and every keyword is checked
against the class before construction, so a version without a setting fails with its name.
tensorrt_llm is imported inside the functions.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from pytest_llenergy.backends.errors import BackendError
from pytest_llenergy.backends.tensorrt.args import TrtPlan

#: where TensorRT-LLM keeps the classes the plan needs, newest layout first
SEARCH_MODULES = (
    "tensorrt_llm.llmapi",
    "tensorrt_llm",
    "tensorrt_llm.llmapi.llm_args",
    "tensorrt_llm.llmapi.kv_cache_type",
    "tensorrt_llm.bindings.executor",
    "tensorrt_llm.bindings",
    "tensorrt_llm.models.modeling_utils",
)


def find_class(name: str, needed_by: str) -> Any:
    """The TensorRT-LLM class ``name`` from wherever this version keeps it; BackendError if none."""
    for module_name in SEARCH_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise BackendError(f"this TensorRT-LLM has no {name} (needed by {needed_by})")


def _member(enum: Any, name: str, needed_by: str) -> Any:
    try:
        return getattr(enum, name)
    except AttributeError:
        raise BackendError(f"this TensorRT-LLM's {getattr(enum, '__name__', enum)} has no {name} ({needed_by})") from None


def accepts(cls: Any, name: str) -> bool:
    """Whether ``cls(...)`` takes the keyword ``name`` (dataclass, pydantic model or plain class)."""
    fields = getattr(cls, "model_fields", None) or getattr(cls, "__dataclass_fields__", None)
    if fields is not None:
        return name in fields
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return True
    return name in params


def _construct(cls: Any, kwargs: dict[str, Any], needed_by: str) -> Any:
    unknown = [k for k in kwargs if not accepts(cls, k)]
    if unknown:
        raise BackendError(
            f"this TensorRT-LLM's {cls.__name__} has no {', '.join(unknown)} (from {needed_by}); unset it for this version"
        )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise BackendError(f"TensorRT-LLM rejected {cls.__name__}({kwargs}): {exc}") from exc


def build_objects(trt_plan: TrtPlan) -> dict[str, Any]:
    """`LLM(...)` keywords with TensorRT-LLM objects for the build (BuildConfig, QuantConfig, CalibConfig)."""
    kwargs: dict[str, Any] = {}
    build = dict(trt_plan.build)
    if "kv_cache_type" in build:
        build["kv_cache_type"] = _member(find_class("KVCacheType", "tensorrt.kv_cache_type"), build["kv_cache_type"],
                                         "tensorrt.kv_cache_type")
    if "speculative_decoding_mode" in build:
        mode = find_class("SpeculativeDecodingMode", "tensorrt.draft_model")
        build["speculative_decoding_mode"] = _member(mode, build["speculative_decoding_mode"], "tensorrt.draft_model")
    if "builder_opt" in build and not accepts(find_class("BuildConfig", "tensorrt build settings"), "builder_opt"):
        raise BackendError(
            "tensorrt.builder_opt_level: this TensorRT-LLM's BuildConfig has no builder optimisation level "
            "(builder_opt was removed in later versions); unset it"
        )
    build_config = _construct(find_class("BuildConfig", "tensorrt build settings"), build, "tensorrt build settings")
    if trt_plan.plugins:
        plugins = getattr(build_config, "plugin_config", None)
        if plugins is None:
            raise BackendError("this TensorRT-LLM's BuildConfig has no plugin_config")
        for key, value in trt_plan.plugins.items():
            if not hasattr(plugins, key):
                raise BackendError(f"this TensorRT-LLM's plugin_config has no option {key!r}")
            setattr(plugins, key, value)
    kwargs["build_config"] = build_config
    if trt_plan.quant is not None:
        algo = find_class("QuantAlgo", "tensorrt.quantization")
        quant = dict(trt_plan.quant)
        for key in ("quant_algo", "kv_cache_quant_algo"):
            if key in quant:
                quant[key] = _member(algo, quant[key], f"tensorrt.{key}")
        kwargs["quant_config"] = _construct(find_class("QuantConfig", "tensorrt.quantization"), quant, "tensorrt.quantization")
    if trt_plan.calib is not None:
        kwargs["calib_config"] = _construct(find_class("CalibConfig", "tensorrt.calibration"), trt_plan.calib,
                                            "tensorrt.calibration")
    return kwargs


def runtime_objects(trt_plan: TrtPlan) -> dict[str, Any]:
    """`LLM(...)` keywords for the runtime: parallelism, KV cache, scheduler, batching, the draft model
    and extra.runtime (passed when building and when loading a cached engine)."""
    kwargs = dict(trt_plan.runtime)
    if trt_plan.speculative is not None:
        cls = find_class("DraftTargetDecodingConfig", "tensorrt.draft_model")
        kwargs["speculative_config"] = _construct(cls, trt_plan.speculative, "tensorrt.draft_model")
    if "batching_type" in kwargs:
        kwargs["batching_type"] = _member(find_class("BatchingType", "tensorrt.batching_type"), kwargs["batching_type"],
                                          "tensorrt.batching_type")
    if trt_plan.kv_cache is not None:
        kwargs["kv_cache_config"] = _construct(find_class("KvCacheConfig", "tensorrt.kv_cache_*"), trt_plan.kv_cache,
                                               "tensorrt.kv_cache_*")
    if trt_plan.scheduler is not None:
        scheduler = dict(trt_plan.scheduler)
        if "capacity_scheduler_policy" in scheduler:
            policy = find_class("CapacitySchedulerPolicy", "tensorrt.capacity_scheduler_policy")
            scheduler["capacity_scheduler_policy"] = _member(policy, scheduler["capacity_scheduler_policy"],
                                                             "tensorrt.capacity_scheduler_policy")
        if "context_chunking_policy" in scheduler:
            policy = find_class("ContextChunkingPolicy", "tensorrt.context_chunking_policy")
            scheduler["context_chunking_policy"] = _member(policy, scheduler["context_chunking_policy"],
                                                           "tensorrt.context_chunking_policy")
        kwargs["scheduler_config"] = _construct(find_class("SchedulerConfig", "tensorrt scheduling"), scheduler,
                                                "tensorrt scheduling")
    return kwargs


def llm_class() -> tuple[Any, str]:
    """The TensorRT-engine `LLM` class and its import path."""
    try:
        module = importlib.import_module("tensorrt_llm._tensorrt_engine")
        return module.LLM, "tensorrt_llm._tensorrt_engine.LLM"
    except (ImportError, AttributeError):
        import tensorrt_llm

        return tensorrt_llm.LLM, "tensorrt_llm.LLM"


def sampling_params(kwargs: dict[str, Any]) -> Any:
    """A `SamplingParams`, with keywords renamed for older versions (``random_seed``, ``end_id``)."""
    cls = find_class("SamplingParams", "sampling")
    kwargs = dict(kwargs)
    if "seed" in kwargs and not accepts(cls, "seed") and accepts(cls, "random_seed"):
        kwargs["random_seed"] = kwargs.pop("seed")
    if "ignore_eos" in kwargs and not accepts(cls, "ignore_eos"):
        kwargs.pop("ignore_eos")
        kwargs["end_id"] = -1  # no token matches: generation runs to max_tokens
    if "beam_width" in kwargs and not accepts(cls, "beam_width") and accepts(cls, "use_beam_search"):
        width = kwargs.pop("beam_width")
        kwargs.update(use_beam_search=True, best_of=width)
    if accepts(cls, "return_perf_metrics"):
        kwargs.setdefault("return_perf_metrics", True)  # the engine's per-request timing: phase boundaries
    return _construct(cls, kwargs, "decoder / workload / tensorrt.beam_width")
