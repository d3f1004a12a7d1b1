"""The `tensorrt:` section: TensorRT-LLM engine build, runtime and sampling settings.

The backend drives TensorRT-LLM's `LLM` API on its TensorRT-engine path: build settings become a
`BuildConfig`, quantisation a `QuantConfig` (+ `CalibConfig`), KV cache settings a `KvCacheConfig`,
scheduling a `SchedulerConfig`; parallelism and chunked context are `LLM(...)` keywords. A field
left unset (None) is not passed, so TensorRT-LLM's default applies. `extra.build` sets further
`BuildConfig` attributes (a nested `plugin_config` mapping sets plugin options), `extra.runtime`
further `LLM(...)` keywords; keys owned by a typed field are rejected.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from pytest_llenergy.config.base import StrictModel

TrtQuantization = Literal[
    "none", "fp8", "int8_sq", "int8_weight_only", "int4_weight_only", "int4_awq", "int4_gptq", "w4a8_awq", "nvfp4"
]

#: BuildConfig attributes owned by a typed field: `extra.build` may not set them.
BUILD_KEYS_OWNED: dict[str, str] = {
    "max_batch_size": "tensorrt.max_batch_size",
    "max_input_len": "tensorrt.max_input_len",
    "max_seq_len": "tensorrt.max_seq_len",
    "max_num_tokens": "tensorrt.max_num_tokens",
    "opt_num_tokens": "tensorrt.opt_num_tokens",
    "max_beam_width": "tensorrt.max_beam_width",
    "builder_opt": "tensorrt.builder_opt_level",
    "strongly_typed": "tensorrt.strongly_typed",
    "kv_cache_type": "tensorrt.kv_cache_type",
    "max_draft_len": "tensorrt.num_draft_tokens",
    "speculative_decoding_mode": "tensorrt.draft_model",
    "weight_sparsity": "tensorrt.weight_sparsity",
    "weight_streaming": "tensorrt.weight_streaming",
}
#: plugin_config options owned by a typed field: `extra.build.plugin_config` may not set them.
PLUGIN_KEYS_OWNED: dict[str, str] = {
    "use_paged_context_fmha": "tensorrt.enable_chunked_context",
    "paged_kv_cache": "tensorrt.kv_cache_type",
    "gemm_plugin": "tensorrt.gemm_plugin",
    "context_fmha": "tensorrt.context_fmha",
    "use_fp8_context_fmha": "tensorrt.use_fp8_context_fmha",
    "multiple_profiles": "tensorrt.multiple_profiles",
    "remove_input_padding": "tensorrt.remove_input_padding",
    "use_fused_mlp": "tensorrt.use_fused_mlp",
    "reduce_fusion": "tensorrt.reduce_fusion",
    "tokens_per_block": "tensorrt.kv_cache_block_size",
}
#: KvCacheConfig / SchedulerConfig options owned by a typed field: `extra.runtime.kv_cache_config` /
#: `extra.runtime.scheduler_config` (mappings merged with the typed options) may not set them.
KV_CACHE_KEYS_OWNED: dict[str, str] = {
    "free_gpu_memory_fraction": "tensorrt.kv_cache_free_gpu_memory_fraction",
    "max_tokens": "tensorrt.kv_cache_max_tokens",
    "enable_block_reuse": "tensorrt.enable_block_reuse",
    "host_cache_size": "tensorrt.kv_cache_host_size",
}
SCHEDULER_KEYS_OWNED: dict[str, str] = {
    "capacity_scheduler_policy": "tensorrt.capacity_scheduler_policy",
    "context_chunking_policy": "tensorrt.context_chunking_policy",
}
#: `LLM(...)` keywords owned by a typed field (or set by the backend): `extra.runtime` may not set them.
RUNTIME_KEYS_OWNED: dict[str, str] = {
    "model": "model.name",
    "tokenizer": "(set by the backend)",
    "skip_tokenizer_init": "(set by the backend)",
    "revision": "model.revision",
    "dtype": "precision",
    "tensor_parallel_size": "tensorrt.tp_size",
    "pipeline_parallel_size": "tensorrt.pp_size",
    "build_config": "tensorrt.<build fields> and extra.build",
    "quant_config": "tensorrt.quantization",
    "calib_config": "tensorrt.calibration",
    "enable_chunked_prefill": "tensorrt.enable_chunked_context",
    "speculative_config": "tensorrt.draft_model",
    "enable_build_cache": "(the backend's own engine cache: tensorrt.engine_cache_dir)",
    "batching_type": "tensorrt.batching_type",
    "max_batch_size": "tensorrt.max_batch_size",
    "max_num_tokens": "tensorrt.max_num_tokens",
    "max_seq_len": "tensorrt.max_seq_len",
    "max_input_len": "tensorrt.max_input_len",
    "max_beam_width": "tensorrt.max_beam_width",
}


def _owned_conflicts(keys: Any, owned: dict[str, str], where: str) -> list[str]:
    return [f"extra.{where}.{key} is set by `{owned[key]}`; use that instead" for key in keys if key in owned]


class TensorrtExtra(StrictModel):
    """Keywords passed verbatim to TensorRT-LLM, for parameters without a typed field."""

    build: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra `BuildConfig` attributes (a `plugin_config` mapping sets plugin options). Part of the engine "
        "cache key. Keys owned by a typed field are rejected.",
    )
    runtime: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra `LLM(...)` keywords, verbatim; `kv_cache_config` / `scheduler_config` mappings are merged "
        "with the typed options. Keys owned by a typed field are rejected.",
    )

    @model_validator(mode="after")
    def _no_owned_keys(self) -> TensorrtExtra:
        problems = _owned_conflicts(self.build, BUILD_KEYS_OWNED, "build")
        plugins = self.build.get("plugin_config")
        if plugins is not None:
            if not isinstance(plugins, dict):
                problems.append("extra.build.plugin_config must be a mapping of plugin options")
            else:
                problems += _owned_conflicts(plugins, PLUGIN_KEYS_OWNED, "build.plugin_config")
        problems += _owned_conflicts(self.runtime, RUNTIME_KEYS_OWNED, "runtime")
        for key, owned in (("kv_cache_config", KV_CACHE_KEYS_OWNED), ("scheduler_config", SCHEDULER_KEYS_OWNED)):
            nested = self.runtime.get(key)
            if nested is None:
                continue
            if not isinstance(nested, dict):
                problems.append(f"extra.runtime.{key} must be a mapping of {key} options")
            else:
                problems += _owned_conflicts(nested, owned, f"runtime.{key}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TensorrtCalibration(StrictModel):
    """Calibration for quantisation recipes that need activation statistics (`CalibConfig`)."""

    dataset: str | None = Field(None, description="Calibration dataset (TensorRT-LLM default: cnn_dailymail).")
    num_batches: int | None = Field(None, ge=1, le=65536, description="Calibration batches (`calib_batches`).")
    batch_size: int | None = Field(None, ge=1, description="Calibration batch size (`calib_batch_size`).")
    max_seq_length: int | None = Field(None, ge=1, description="Calibration sequence length (`calib_max_seq_length`).")

    def calib_kwargs(self) -> dict[str, Any]:
        names = {"dataset": "calib_dataset", "num_batches": "calib_batches", "batch_size": "calib_batch_size",
                 "max_seq_length": "calib_max_seq_length"}
        return {names[k]: v for k, v in self.model_dump(exclude_none=True).items()}


class TensorrtConfig(StrictModel):
    """TensorRT-LLM engine settings (build, quantisation, KV cache, scheduling, speculative decoding)."""

    # --- engine cache -------------------------------------------------------------------------------
    engine_cache_dir: str | None = Field(
        None,
        description="Where built engines are kept, one folder per build key (hash of build settings, model, GPU "
        "architecture and TensorRT-LLM version). Default: $LEM_CACHE_DIR/tensorrt-engines "
        "(~/.cache/pytest-llenergy/tensorrt-engines).",
    )
    force_rebuild: bool = Field(False, description="Build the engine even when the cache holds one for this key.")

    # --- build (BuildConfig) --------------------------------------------------------------------------
    max_batch_size: int | None = Field(None, ge=1, le=4096, description="Largest batch the engine is built for.")
    max_input_len: int | None = Field(None, ge=1, description="Longest prompt the engine accepts.")
    max_seq_len: int | None = Field(None, ge=1, description="Longest prompt + output the engine accepts.")
    max_num_tokens: int | None = Field(
        None, ge=1, description="Tokens per engine step across the batch (in-flight batching budget)."
    )
    opt_num_tokens: int | None = Field(None, ge=1, description="Token count the engine's kernels are tuned for.")
    max_beam_width: int | None = Field(None, ge=1, le=64, description="Largest beam width the engine is built for.")
    builder_opt_level: int | None = Field(
        None, ge=0, le=5,
        description="TensorRT builder optimisation level 0-5 (`BuildConfig.builder_opt`; TensorRT default 3): "
        "higher tries more kernel tactics. A TensorRT-LLM whose BuildConfig lacks it is an error.",
    )
    strongly_typed: bool | None = Field(None, description="Build a strongly typed network (types fixed by the model).")
    weight_sparsity: bool | None = Field(None, description="Use 2:4 structured-sparse kernels where weights allow.")
    weight_streaming: bool | None = Field(None, description="Stream weights from host memory (models larger than the GPU).")
    gemm_plugin: Literal["auto", "float16", "bfloat16", "fp8", "disable"] | None = Field(
        None, description="GEMM plugin (`plugin_config.gemm_plugin`; `disable` = TensorRT's own GEMM kernels)."
    )
    context_fmha: bool | None = Field(None, description="Fused multi-head attention in the context phase.")
    use_fp8_context_fmha: bool | None = Field(None, description="FP8 fused attention in the context phase (Hopper+).")
    multiple_profiles: bool | None = Field(None, description="Build several optimisation profiles (better kernels per shape).")
    remove_input_padding: bool | None = Field(None, description="Pack sequences without padding.")
    use_fused_mlp: bool | None = Field(None, description="Fuse the gated MLP's two GEMMs.")
    reduce_fusion: bool | None = Field(None, description="Fuse all-reduce with the following norm (tensor parallel).")

    kv_cache_block_size: int | None = Field(
        None, ge=1, description="Tokens per KV cache block (`plugin_config.tokens_per_block`)."
    )

    # --- parallelism ----------------------------------------------------------------------------------
    tp_size: int | None = Field(None, ge=1, description="Tensor parallel size (`tensor_parallel_size`).")
    pp_size: int | None = Field(None, ge=1, description="Pipeline parallel size (`pipeline_parallel_size`).")

    # --- quantisation (QuantConfig) -------------------------------------------------------------------------
    quantization: TrtQuantization = Field(
        "none",
        description="Weight/activation quantisation: `fp8` (FP8), `int8_sq` (W8A8 SmoothQuant per channel), "
        "`int8_weight_only` (W8A16), `int4_weight_only` (W4A16), `int4_awq` (W4A16 AWQ), `int4_gptq` "
        "(W4A16 GPTQ), `w4a8_awq`, `nvfp4`.",
    )
    kv_cache_quantization: Literal["fp8", "int8", "nvfp4"] | None = Field(
        None, description="KV cache quantisation (`QuantConfig.kv_cache_quant_algo`)."
    )
    quant_group_size: int | None = Field(None, ge=1, description="Group size of AWQ/GPTQ quantisation (default 128).")
    smoothquant_alpha: float | None = Field(
        None, ge=0.0, le=1.0, description="SmoothQuant migration strength (`smoothquant_val`, default 0.5)."
    )
    calibration: TensorrtCalibration = Field(
        default_factory=TensorrtCalibration, description="Calibration for fp8 / int8_sq / int4_awq / w4a8_awq."
    )

    # --- KV cache (BuildConfig.kv_cache_type + KvCacheConfig) ---------------------------------------------
    kv_cache_type: Literal["paged", "continuous"] | None = Field(
        None, description="KV cache layout built into the engine (TensorRT-LLM default: paged)."
    )
    kv_cache_free_gpu_memory_fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="Fraction of free GPU memory the KV cache takes (`free_gpu_memory_fraction`)."
    )
    kv_cache_max_tokens: int | None = Field(None, ge=1, description="Cap on KV cache size in tokens (`max_tokens`).")
    enable_block_reuse: bool | None = Field(None, description="Reuse KV blocks across requests sharing a prefix.")
    kv_cache_host_size: int | None = Field(None, ge=0, description="Bytes of host memory for offloaded KV blocks.")

    # --- scheduling ---------------------------------------------------------------------------------
    enable_chunked_context: bool | None = Field(
        None, description="Chunked context (prefill): `enable_chunked_prefill` plus `use_paged_context_fmha`."
    )
    capacity_scheduler_policy: Literal["max_utilization", "guaranteed_no_evict", "static_batch"] | None = Field(
        None, description="How the in-flight batcher admits requests (`SchedulerConfig`)."
    )
    context_chunking_policy: Literal["first_come_first_served", "equal_progress"] | None = Field(
        None, description="Order of context chunks under chunked context (`SchedulerConfig`)."
    )
    batching_type: Literal["inflight", "static"] | None = Field(None, description="In-flight or static batching.")

    # --- speculative decoding ------------------------------------------------------------------------------
    draft_model: str | None = Field(
        None, description="Draft model (hub id or local path) for draft-target speculative decoding."
    )
    num_draft_tokens: int | None = Field(
        None, ge=1, le=64, description="Tokens the draft proposes per step (`max_draft_len`). Needs draft_model."
    )

    # --- sampling ---------------------------------------------------------------------------------------
    beam_width: int | None = Field(
        None, ge=1, le=64,
        description="Beam search width (`SamplingParams`); the engine is built with max_beam_width >= this "
        "(set to beam_width when max_beam_width is unset).",
    )

    extra: TensorrtExtra = Field(default_factory=TensorrtExtra, description="Pass-through keywords.")

    @model_validator(mode="after")
    def _consistent(self) -> TensorrtConfig:
        problems: list[str] = []
        if self.max_input_len is not None and self.max_seq_len is not None and self.max_input_len > self.max_seq_len:
            problems.append("max_input_len must not exceed max_seq_len")
        if (self.draft_model is None) != (self.num_draft_tokens is None):
            problems.append("draft_model and num_draft_tokens go together (draft-target speculative decoding)")
        if self.quant_group_size is not None and self.quantization not in ("int4_awq", "int4_gptq", "w4a8_awq"):
            problems.append("quant_group_size applies to int4_awq, int4_gptq and w4a8_awq")
        if self.smoothquant_alpha is not None and self.quantization != "int8_sq":
            problems.append("smoothquant_alpha applies to quantization: int8_sq")
        calibrated = ("fp8", "int8_sq", "int4_awq", "w4a8_awq", "nvfp4")
        if self.calibration.model_dump(exclude_none=True) and self.quantization not in calibrated and (
            self.kv_cache_quantization is None
        ):
            problems.append(f"calibration applies to quantization {', '.join(calibrated)} or a quantised KV cache")
        if self.beam_width is not None and self.max_beam_width is not None and self.beam_width > self.max_beam_width:
            problems.append("beam_width must not exceed max_beam_width")
        if self.context_chunking_policy is not None and self.enable_chunked_context is not True:
            problems.append("context_chunking_policy needs enable_chunked_context: true")
        if self.kv_cache_type == "continuous" and self.enable_block_reuse:
            problems.append("enable_block_reuse needs kv_cache_type: paged")
        if self.kv_cache_type == "continuous" and self.enable_chunked_context:
            problems.append("enable_chunked_context needs kv_cache_type: paged")
        if problems:
            raise ValueError("; ".join(problems))
        return self
