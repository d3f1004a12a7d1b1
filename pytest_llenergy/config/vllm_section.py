"""The `vllm:` section: vLLM offline engine (`vllm.LLM`) and `SamplingParams` settings.

Every field reaches vLLM: engine fields become `vllm.LLM(...)` keywords (names follow vLLM's
`EngineArgs`), sampling fields become `SamplingParams(...)` keywords. A field left unset (None) is
not passed, so vLLM's own default applies and the effective value is recorded in the result.
`extra.engine` / `extra.sampling` pass anything else verbatim; a key that a typed field (or
`precision`, `model.*`, `decoder.*`, `workload.*`) already owns is rejected, so one setting never
has two sources.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from pytest_llenergy.config.base import StrictModel

KvCacheDtype = Literal[
    "auto", "float16", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "nvfp4",
    "int8_per_token_head", "fp8_per_token_head", "int4_per_token_head",
]
CudagraphMode = Literal["NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE"]
SpeculativeMethod = Literal["ngram", "draft_model", "eagle", "eagle3", "medusa", "mlp_speculator", "mtp", "suffix"]

#: `vllm.LLM` keywords owned by a typed field (or set by the backend): `extra.engine` may not set them.
ENGINE_KEYS_OWNED: dict[str, str] = {
    "model": "model.name",
    "tokenizer": "(set by the backend: the model's tokenizer)",
    "skip_tokenizer_init": "(set by the backend)",
    "revision": "model.revision",
    "dtype": "precision",
    "seed": "vllm.seed",
    "max_num_seqs": "vllm.max_num_seqs",
    "max_num_batched_tokens": "vllm.max_num_batched_tokens",
    "gpu_memory_utilization": "vllm.gpu_memory_utilization",
    "kv_cache_memory_bytes": "vllm.kv_cache_memory_bytes",
    "swap_space": "vllm.swap_space",
    "cpu_offload_gb": "vllm.cpu_offload_gb",
    "kv_offloading_size": "vllm.kv_offloading_size",
    "tensor_parallel_size": "vllm.tensor_parallel_size",
    "pipeline_parallel_size": "vllm.pipeline_parallel_size",
    "data_parallel_size": "vllm.data_parallel_size",
    "distributed_executor_backend": "vllm.distributed_executor_backend",
    "disable_custom_all_reduce": "vllm.disable_custom_all_reduce",
    "enable_expert_parallel": "vllm.enable_expert_parallel",
    "enable_prefix_caching": "vllm.enable_prefix_caching",
    "enable_chunked_prefill": "vllm.enable_chunked_prefill",
    "kv_cache_dtype": "vllm.kv_cache_dtype",
    "block_size": "vllm.block_size",
    "max_model_len": "vllm.max_model_len",
    "enforce_eager": "vllm.enforce_eager",
    "optimization_level": "vllm.optimization_level",
    "performance_mode": "vllm.performance_mode",
    "async_scheduling": "vllm.async_scheduling",
    "long_prefill_token_threshold": "vllm.long_prefill_token_threshold",
    "attention_backend": "vllm.attention_backend",
    "disable_sliding_window": "vllm.disable_sliding_window",
    "quantization": "vllm.quantization",
    "speculative_config": "vllm.speculative",
    "spec_method": "vllm.speculative.method",
    "spec_model": "vllm.speculative.model",
    "spec_tokens": "vllm.speculative.num_speculative_tokens",
    "enable_lora": "vllm.lora.enabled",
    "max_loras": "vllm.lora.max_loras",
    "max_lora_rank": "vllm.lora.max_lora_rank",
    "max_cpu_loras": "vllm.lora.max_cpu_loras",
    "fully_sharded_loras": "vllm.lora.fully_sharded_loras",
    "max_logprobs": "(set by the backend from vllm.logprobs / vllm.prompt_logprobs)",
    "disable_log_stats": "(set by the backend: per-request metrics give TTFT/ITL)",
}

#: `SamplingParams` keywords owned by a typed field: `extra.sampling` may not set them.
SAMPLING_KEYS_OWNED: dict[str, str] = {
    "max_tokens": "workload.output_tokens",
    "min_tokens": "workload.output_tokens",
    "ignore_eos": "(set by the backend: generation runs exactly output_tokens)",
    "temperature": "decoder.temperature",
    "top_k": "decoder.top_k",
    "top_p": "decoder.top_p",
    "min_p": "decoder.min_p",
    "repetition_penalty": "decoder.repetition_penalty",
    "seed": "workload.seed",
    "n": "vllm.n",
    "logprobs": "vllm.logprobs",
    "prompt_logprobs": "vllm.prompt_logprobs",
    "detokenize": "vllm.detokenize",
}

#: typed fields that reach vLLM through `compilation_config` (key inside that dict)
COMPILATION_FIELDS: dict[str, str] = {
    "cudagraph_mode": "cudagraph_mode",
    "cudagraph_capture_sizes": "cudagraph_capture_sizes",
    "max_cudagraph_capture_size": "max_cudagraph_capture_size",
}


def _owned_conflicts(keys: Any, owned: dict[str, str], where: str) -> list[str]:
    return [f"extra.{where}.{key} is set by `{owned[key]}`; use that instead" for key in keys if key in owned]


class VllmExtra(StrictModel):
    """Keywords passed verbatim to vLLM, for parameters without a typed field."""

    engine: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra keyword arguments for `vllm.LLM`, verbatim. Keys owned by a typed field are rejected.",
    )
    sampling: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra keyword arguments for `SamplingParams`, verbatim. Keys owned by a typed field are rejected.",
    )

    @model_validator(mode="after")
    def _no_owned_keys(self) -> VllmExtra:
        problems = _owned_conflicts(self.engine, ENGINE_KEYS_OWNED, "engine")
        problems += _owned_conflicts(self.sampling, SAMPLING_KEYS_OWNED, "sampling")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class VllmSpeculative(StrictModel):
    """Speculative decoding, passed as `speculative_config={...}`."""

    method: SpeculativeMethod = Field(
        description="Draft source: `ngram` (prompt lookup, no model), `draft_model` (a smaller model), "
        "`eagle`/`eagle3`/`medusa`/`mlp_speculator`/`mtp` (trained heads), `suffix` (suffix decoding)."
    )
    model: str | None = Field(None, description="Draft model or heads (hub id or local path); needed by model-based methods.")
    num_speculative_tokens: int = Field(ge=1, le=64, description="Tokens proposed per step.")
    prompt_lookup_min: int | None = Field(None, ge=1, description="ngram: smallest n-gram matched in the prompt.")
    prompt_lookup_max: int | None = Field(None, ge=1, description="ngram: largest n-gram matched in the prompt.")
    draft_tensor_parallel_size: int | None = Field(None, ge=1, description="Tensor parallel size of the draft model.")

    @model_validator(mode="after")
    def _consistent(self) -> VllmSpeculative:
        problems = []
        if self.method in ("ngram", "suffix") and self.model is not None:
            problems.append(f"speculative.model does not apply to method {self.method!r}")
        if self.method not in ("ngram", "suffix") and self.model is None:
            problems.append(f"speculative method {self.method!r} needs speculative.model")
        if self.method != "ngram":
            for name in ("prompt_lookup_min", "prompt_lookup_max"):
                if getattr(self, name) is not None:
                    problems.append(f"speculative.{name} only applies to method 'ngram'")
        if (
            self.prompt_lookup_min is not None
            and self.prompt_lookup_max is not None
            and self.prompt_lookup_min > self.prompt_lookup_max
        ):
            problems.append("speculative.prompt_lookup_min must not exceed prompt_lookup_max")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def config_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class VllmLora(StrictModel):
    """LoRA adapters: engine support (`enable_lora`, ...) and the adapter applied to every request."""

    enabled: bool = Field(False, description="Build the engine with LoRA support (`enable_lora`).")
    adapter: str | None = Field(
        None, description="Local path of a LoRA adapter applied to every request (`LoRARequest`). Needs `enabled`."
    )
    max_loras: int | None = Field(None, ge=1, description="Adapters resident on the device at once.")
    max_lora_rank: int | None = Field(None, ge=1, description="Largest adapter rank the engine reserves room for.")
    max_cpu_loras: int | None = Field(None, ge=1, description="Adapters cached in CPU memory.")
    fully_sharded_loras: bool | None = Field(None, description="Shard LoRA computation over tensor-parallel ranks.")

    @model_validator(mode="after")
    def _consistent(self) -> VllmLora:
        if not self.enabled:
            set_fields = [n for n in ("adapter", "max_loras", "max_lora_rank", "max_cpu_loras", "fully_sharded_loras")
                          if getattr(self, n) is not None]
            if set_fields:
                raise ValueError(f"lora.{', lora.'.join(set_fields)} need lora.enabled: true")
        return self

    def engine_kwargs(self) -> dict[str, Any]:
        if not self.enabled:
            return {}
        kwargs: dict[str, Any] = {"enable_lora": True}
        for name in ("max_loras", "max_lora_rank", "max_cpu_loras", "fully_sharded_loras"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return kwargs


class VllmConfig(StrictModel):
    """vLLM offline engine settings (`vllm.LLM` and `SamplingParams`)."""

    # --- memory and concurrency ------------------------------------------------------------------
    max_num_seqs: int | None = Field(None, ge=1, description="Maximum sequences per scheduler step (the running batch).")
    max_num_batched_tokens: int | None = Field(
        None, ge=1, description="Token budget of one scheduler step (prefill chunks plus decodes)."
    )
    gpu_memory_utilization: float | None = Field(
        None, gt=0.0, le=1.0, description="Fraction of GPU memory vLLM may take (weights, activations, KV cache)."
    )
    kv_cache_memory_bytes: int | None = Field(
        None, ge=1, description="KV cache size in bytes per device (overrides gpu_memory_utilization for the cache)."
    )
    swap_space: float | None = Field(
        None, ge=0.0,
        description="CPU swap space per GPU in GiB for preempted sequences. Older vLLM only: a vLLM without "
        "this argument (e.g. 0.32) is an error, never a silent drop; see kv_offloading_size.",
    )
    cpu_offload_gb: float | None = Field(None, ge=0.0, description="GiB of weights per GPU kept in CPU memory and streamed in.")
    kv_offloading_size: float | None = Field(None, gt=0.0, description="GiB of KV cache offloaded to CPU memory.")

    # --- parallelism ------------------------------------------------------------------------------
    tensor_parallel_size: int | None = Field(None, ge=1, description="GPUs each layer is split over.")
    pipeline_parallel_size: int | None = Field(None, ge=1, description="Pipeline stages (layers split over GPUs).")
    data_parallel_size: int | None = Field(None, ge=1, description="Engine replicas (data parallel).")
    distributed_executor_backend: Literal["mp", "ray", "uni", "external_launcher"] | None = Field(
        None, description="How workers run: `mp` processes, `ray`, `uni` (one process), `external_launcher`."
    )
    disable_custom_all_reduce: bool | None = Field(None, description="Use NCCL all-reduce instead of vLLM's custom kernel.")
    enable_expert_parallel: bool | None = Field(None, description="Expert parallelism for mixture-of-experts layers.")

    # --- KV cache -----------------------------------------------------------------------------------
    enable_prefix_caching: bool | None = Field(None, description="Reuse KV blocks of shared prompt prefixes.")
    enable_chunked_prefill: bool | None = Field(None, description="Split long prefills into chunks scheduled with decodes.")
    kv_cache_dtype: KvCacheDtype | None = Field(None, description="KV cache data type (`auto` = model dtype).")
    block_size: int | None = Field(
        None, ge=1, le=1024, description="Tokens per KV cache block (the CPU backend needs a multiple of 32)."
    )
    max_model_len: int | None = Field(None, ge=1, description="Context length (prompt + output) the engine reserves for.")

    # --- execution and compilation -------------------------------------------------------------------
    enforce_eager: bool | None = Field(None, description="Run eagerly: no CUDA graphs, no torch.compile warm-up.")
    optimization_level: Literal[0, 1, 2, 3] | None = Field(
        None, description="vLLM's compilation/optimisation level (O0 = none ... O3 = most; vLLM default O2)."
    )
    performance_mode: Literal["balanced", "interactivity", "throughput"] | None = Field(
        None, description="vLLM's scheduling/kernel preset for latency or throughput."
    )
    cudagraph_mode: CudagraphMode | None = Field(
        None, description="CUDA graph capture mode, passed in `compilation_config`."
    )
    cudagraph_capture_sizes: list[int] | None = Field(
        None, description="Batch sizes captured as CUDA graphs, passed in `compilation_config`."
    )
    max_cudagraph_capture_size: int | None = Field(
        None, ge=1, description="Largest batch captured as a CUDA graph, passed in `compilation_config`."
    )
    long_prefill_token_threshold: int | None = Field(
        None, ge=0, description="Prompts longer than this are prefilled in partial chunks per step (0 = off)."
    )
    async_scheduling: bool | None = Field(None, description="Overlap scheduling with model execution.")
    attention_backend: str | None = Field(
        None, description="Attention kernel (`FLASH_ATTN`, `FLASHINFER`, `TRITON_ATTN`, `FLEX_ATTENTION`, `CPU_ATTN`, ...)."
    )
    disable_sliding_window: bool | None = Field(None, description="Full attention even for sliding-window models.")

    # --- weights --------------------------------------------------------------------------------------
    quantization: str | None = Field(
        None,
        description="Weight quantisation method (`awq`, `gptq`, `gptq_marlin`, `awq_marlin`, `fp8`, "
        "`compressed-tensors`, `bitsandbytes`, ...); pre-quantised checkpoints need their own method.",
    )
    seed: int | None = Field(None, ge=0, description="Engine seed (`LLM(seed=...)`); default: workload.seed.")

    # --- speculative decoding and LoRA ----------------------------------------------------------------
    speculative: VllmSpeculative | None = Field(None, description="Speculative decoding (`speculative_config`).")
    lora: VllmLora = Field(default_factory=VllmLora, description="LoRA adapter support.")

    # --- sampling (SamplingParams) ---------------------------------------------------------------------
    n: int = Field(1, ge=1, le=64, description="Completions per prompt (parallel sampling); output tokens count all.")
    logprobs: int | None = Field(None, ge=0, le=100, description="Log-probabilities of this many top tokens per output token.")
    prompt_logprobs: int | None = Field(
        None, ge=0, le=100, description="Log-probabilities per prompt token (computes logits over the whole prompt)."
    )
    detokenize: bool = Field(
        False,
        description="Detokenise outputs inside the engine. Default false: the transformers backend does not decode "
        "either, so the comparison stays fair; true adds the cost a text-returning server pays.",
    )
    prompt_input: Literal["auto", "tokens", "text"] = Field(
        "auto",
        description="How prompts reach vLLM: `tokens` (TokensPrompt ids), `text` (strings vLLM tokenises inside the "
        "measured window), `auto` (synthetic: tokens; text workloads: text when vLLM's tokenisation gives the "
        "prepared ids exactly, else tokens with a warning).",
    )

    request_metrics: bool = Field(
        True,
        description="Keep vLLM's per-request timestamps (`disable_log_stats: false`): the source of TTFT and "
        "inter-token latency. False saves a little host work and reports no TTFT/ITL.",
    )

    extra: VllmExtra = Field(default_factory=VllmExtra, description="Pass-through keywords.")

    @model_validator(mode="after")
    def _consistent(self) -> VllmConfig:
        problems: list[str] = []
        compiled = [n for n in COMPILATION_FIELDS if getattr(self, n) is not None]
        nested = self.extra.engine.get("compilation_config")
        if compiled and nested is not None:
            if not isinstance(nested, dict):
                problems.append("extra.engine.compilation_config must be a mapping when cudagraph fields are typed")
            else:
                for name in compiled:
                    if COMPILATION_FIELDS[name] in nested:
                        problems.append(
                            f"extra.engine.compilation_config.{COMPILATION_FIELDS[name]} is set by `vllm.{name}`; use that instead"
                        )
        if self.enforce_eager and self.cudagraph_mode not in (None, "NONE"):
            problems.append(f"cudagraph_mode {self.cudagraph_mode!r} contradicts enforce_eager: true")
        if self.cudagraph_capture_sizes is not None and any(s < 1 for s in self.cudagraph_capture_sizes):
            problems.append("cudagraph_capture_sizes must be positive batch sizes")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def engine_fields(self) -> dict[str, Any]:
        """Typed `vllm.LLM` keywords this section sets (no model, dtype, seed or extra)."""
        skip = {"speculative", "lora", "seed", "extra", "n", "logprobs", "prompt_logprobs", "detokenize", "prompt_input",
                "request_metrics", *COMPILATION_FIELDS}
        kwargs = {name: getattr(self, name) for name in type(self).model_fields if name not in skip}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        compilation = {COMPILATION_FIELDS[n]: getattr(self, n) for n in COMPILATION_FIELDS if getattr(self, n) is not None}
        if compilation:
            kwargs["compilation_config"] = compilation
        if self.speculative is not None:
            kwargs["speculative_config"] = self.speculative.config_dict()
        kwargs.update(self.lora.engine_kwargs())
        return kwargs
