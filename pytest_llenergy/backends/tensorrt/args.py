"""What an experiment asks of TensorRT-LLM, as plain data, and the engine cache key.

:func:`plan` maps the `tensorrt:` section (plus precision, decoder and workload) onto the
TensorRT-LLM `LLM` API: `BuildConfig` keywords and `plugin_config` options, `QuantConfig` /
`CalibConfig` / `KvCacheConfig` / `SchedulerConfig` keywords (enum members by name), the
speculative config and the remaining `LLM(...)` keywords. No tensorrt_llm import here: the backend
turns the plan into objects (:mod:`.tensorrt_objects`), tests check the mapping on plain dicts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_llenergy.backends.errors import BackendError
from pytest_llenergy.backends.session import sampling_settings

#: `tensorrt.quantization` -> `QuantAlgo` member name
QUANT_ALGOS = {
    "fp8": "FP8",
    "int8_sq": "W8A8_SQ_PER_CHANNEL",
    "int8_weight_only": "W8A16",
    "int4_weight_only": "W4A16",
    "int4_awq": "W4A16_AWQ",
    "int4_gptq": "W4A16_GPTQ",
    "w4a8_awq": "W4A8_AWQ",
    "nvfp4": "NVFP4",
}
KV_QUANT_ALGOS = {"fp8": "FP8", "int8": "INT8", "nvfp4": "NVFP4"}
SCHEDULER_POLICIES = {
    "max_utilization": "MAX_UTILIZATION",
    "guaranteed_no_evict": "GUARANTEED_NO_EVICT",
    "static_batch": "STATIC_BATCH",
}
CHUNKING_POLICIES = {"first_come_first_served": "FIRST_COME_FIRST_SERVED", "equal_progress": "EQUAL_PROGRESS"}
BATCHING_TYPES = {"inflight": "INFLIGHT", "static": "STATIC"}
KV_CACHE_TYPES = {"paged": "PAGED", "continuous": "CONTINUOUS"}

#: typed field -> BuildConfig keyword
BUILD_FIELDS = {
    "max_batch_size": "max_batch_size",
    "max_input_len": "max_input_len",
    "max_seq_len": "max_seq_len",
    "max_num_tokens": "max_num_tokens",
    "opt_num_tokens": "opt_num_tokens",
    "max_beam_width": "max_beam_width",
    "builder_opt_level": "builder_opt",
    "strongly_typed": "strongly_typed",
    "weight_sparsity": "weight_sparsity",
    "weight_streaming": "weight_streaming",
}
#: typed field -> plugin_config option
PLUGIN_FIELDS = {
    "gemm_plugin": "gemm_plugin",
    "context_fmha": "context_fmha",
    "use_fp8_context_fmha": "use_fp8_context_fmha",
    "multiple_profiles": "multiple_profiles",
    "remove_input_padding": "remove_input_padding",
    "use_fused_mlp": "use_fused_mlp",
    "reduce_fusion": "reduce_fusion",
    "kv_cache_block_size": "tokens_per_block",
}
#: typed field -> KvCacheConfig keyword
KV_CACHE_FIELDS = {
    "kv_cache_free_gpu_memory_fraction": "free_gpu_memory_fraction",
    "kv_cache_max_tokens": "max_tokens",
    "enable_block_reuse": "enable_block_reuse",
    "kv_cache_host_size": "host_cache_size",
}
DTYPES = {"float16": "float16", "bfloat16": "bfloat16"}


@dataclass
class TrtPlan:
    """Everything the backend passes to TensorRT-LLM, as JSON-able data (enum members by name)."""

    build: dict[str, Any] = field(default_factory=dict)
    plugins: dict[str, Any] = field(default_factory=dict)
    quant: dict[str, Any] | None = None
    calib: dict[str, Any] | None = None
    kv_cache: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    speculative: dict[str, Any] | None = None
    runtime: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def build_payload(self) -> dict[str, Any]:
        """What decides the built engine (the cache key's build part): not runtime or sampling settings."""
        return {
            "build": self.build,
            "plugins": self.plugins,
            "quant": self.quant,
            "calib": self.calib,
            "speculative": self.speculative,
            "parallel": {k: self.runtime.get(k) for k in ("tensor_parallel_size", "pipeline_parallel_size")},
            "dtype": self.runtime.get("dtype"),
        }

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def plan(experiment: Any) -> TrtPlan:
    """The TensorRT-LLM plan for an ExperimentConfig (read by attribute)."""
    section = experiment.tensorrt
    out = TrtPlan()
    if experiment.precision not in DTYPES:
        raise BackendError("TensorRT-LLM does not run float32: use float16 or bfloat16")
    out.runtime["dtype"] = DTYPES[experiment.precision]

    # build
    for name, key in BUILD_FIELDS.items():
        if getattr(section, name) is not None:
            out.build[key] = getattr(section, name)
    if section.kv_cache_type is not None:
        out.build["kv_cache_type"] = KV_CACHE_TYPES[section.kv_cache_type]
    if section.beam_width is not None and section.beam_width > 1 and section.max_beam_width is None:
        out.build["max_beam_width"] = section.beam_width
        out.notes.append(f"tensorrt.max_beam_width set to beam_width ({section.beam_width}) for the build")
    extra_build = dict(section.extra.build)
    extra_plugins = dict(extra_build.pop("plugin_config", None) or {})
    out.build.update(extra_build)
    for name, key in PLUGIN_FIELDS.items():
        if getattr(section, name) is not None:
            out.plugins[key] = getattr(section, name)
    if section.enable_chunked_context:
        out.plugins["use_paged_context_fmha"] = True
    elif section.enable_chunked_context is False:
        out.plugins["use_paged_context_fmha"] = False
    out.plugins.update(extra_plugins)

    # quantisation
    if section.quantization != "none" or section.kv_cache_quantization is not None:
        quant: dict[str, Any] = {}
        if section.quantization != "none":
            quant["quant_algo"] = QUANT_ALGOS[section.quantization]
        if section.kv_cache_quantization is not None:
            quant["kv_cache_quant_algo"] = KV_QUANT_ALGOS[section.kv_cache_quantization]
        if section.quant_group_size is not None:
            quant["group_size"] = section.quant_group_size
        if section.smoothquant_alpha is not None:
            quant["smoothquant_val"] = section.smoothquant_alpha
        out.quant = quant
    calib = section.calibration.calib_kwargs()
    if calib:
        out.calib = calib

    # KV cache and scheduling (runtime)
    kv = {key: getattr(section, name) for name, key in KV_CACHE_FIELDS.items() if getattr(section, name) is not None}
    extra_runtime = dict(section.extra.runtime)
    kv.update(extra_runtime.pop("kv_cache_config", None) or {})
    out.kv_cache = kv or None
    scheduler: dict[str, Any] = {}
    if section.capacity_scheduler_policy is not None:
        scheduler["capacity_scheduler_policy"] = SCHEDULER_POLICIES[section.capacity_scheduler_policy]
    if section.context_chunking_policy is not None:
        scheduler["context_chunking_policy"] = CHUNKING_POLICIES[section.context_chunking_policy]
    scheduler.update(extra_runtime.pop("scheduler_config", None) or {})
    out.scheduler = scheduler or None

    # parallelism and the other LLM keywords
    if section.tp_size is not None:
        out.runtime["tensor_parallel_size"] = section.tp_size
    if section.pp_size is not None:
        out.runtime["pipeline_parallel_size"] = section.pp_size
    if section.enable_chunked_context is not None:
        out.runtime["enable_chunked_prefill"] = section.enable_chunked_context
    if section.batching_type is not None:
        out.runtime["batching_type"] = BATCHING_TYPES[section.batching_type]

    # speculative decoding: draft-target
    if section.draft_model is not None:
        out.speculative = {"max_draft_len": section.num_draft_tokens, "speculative_model": section.draft_model}
        out.build["max_draft_len"] = section.num_draft_tokens
        out.build["speculative_decoding_mode"] = "DRAFT_TOKENS_EXTERNAL"
    out.runtime.update(extra_runtime)
    return out


def sampling(experiment: Any, output_tokens: int, seed: int | None) -> tuple[dict[str, Any], list[str]]:
    """`SamplingParams` keywords: exactly ``output_tokens`` new tokens, EOS ignored; decoder settings."""
    section = experiment.tensorrt
    decoder = experiment.decoder.resolved()
    notes: list[str] = []
    kwargs: dict[str, Any] = {"max_tokens": output_tokens, "min_tokens": output_tokens, "ignore_eos": True}
    if decoder.get("do_sample"):
        kwargs.update(sampling_settings(decoder, seed))
    else:
        kwargs["top_k"] = 1  # greedy in every TensorRT-LLM version
        explicit = experiment.decoder.model_dump(exclude_none=True)
        for key in ("temperature", "top_k", "top_p", "min_p"):
            if key in explicit and not (key == "temperature" and explicit[key] == 0):
                notes.append(f"decoder.{key}={explicit[key]!r} has no effect with greedy decoding (not passed)")
    for key in ("repetition_penalty", "no_repeat_ngram_size"):
        if decoder.get(key) is not None:
            kwargs[key] = decoder[key]
    if section.beam_width is not None and section.beam_width > 1:
        kwargs["beam_width"] = section.beam_width
    return kwargs, notes


def engine_key(payload: dict[str, Any], model: dict[str, Any], gpu: str, version: str) -> tuple[str, dict[str, Any]]:
    """(key, what it hashes): build settings, model identity, GPU architecture, TensorRT-LLM version."""
    keyed = {"build": payload, "model": model, "gpu": gpu, "tensorrt_llm": version}
    blob = json.dumps(keyed, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16], keyed
