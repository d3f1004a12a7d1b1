"""The `transformers:` section: PyTorch / Hugging Face engine settings.

Every field reaches the engine: load-time fields go to ``from_pretrained`` (or to torch at load),
generate-time fields go to ``generate``. ``extra.load`` / ``extra.generate`` pass anything else
verbatim; a key that a typed field (or ``precision``, ``model.*``, ``decoder.*``,
``workload.*``) already owns is rejected, so one setting never has two sources.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pytest_llenergy.config.base import StrictModel

DtypeName = Literal["float32", "float16", "bfloat16"]
#: device_map strategies that spread a model over the devices (need ``accelerate``).
SPREADING_DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
_DEVICE_PATTERN = re.compile(r"^(cpu|mps|meta|disk|cuda(:\d+)?|xpu(:\d+)?|\d+)$")

#: ``from_pretrained`` keywords owned by a typed field: ``extra.load`` may not set them.
LOAD_KEYS_OWNED: dict[str, str] = {
    "dtype": "precision",
    "torch_dtype": "precision",
    "revision": "model.revision",
    "gguf_file": "model.gguf_file",
    "attn_implementation": "transformers.attn_implementation",
    "device_map": "transformers.device_map",
    "max_memory": "transformers.max_memory",
    "offload_folder": "transformers.offload_folder",
    "low_cpu_mem_usage": "transformers.low_cpu_mem_usage",
    "trust_remote_code": "transformers.trust_remote_code",
    "use_kernels": "transformers.use_kernels",
    "experts_implementation": "transformers.experts_implementation",
    "quantization_config": "transformers.quantization",
    "load_in_4bit": "transformers.quantization.load_in_4bit",
    "load_in_8bit": "transformers.quantization.load_in_8bit",
    "config": "model.name",
    "state_dict": "model.weights",
}

#: ``generate`` keywords owned by a typed field: ``extra.generate`` may not set them.
GENERATE_KEYS_OWNED: dict[str, str] = {
    "max_new_tokens": "workload.output_tokens",
    "min_new_tokens": "workload.output_tokens",
    "max_length": "workload.output_tokens",
    "min_length": "workload.output_tokens",
    "streamer": "workload.streaming",
    "input_ids": "workload.prompts",
    "inputs": "workload.prompts",
    "attention_mask": "workload.prompts",
    "do_sample": "decoder.do_sample",
    "temperature": "decoder.temperature",
    "top_k": "decoder.top_k",
    "top_p": "decoder.top_p",
    "min_p": "decoder.min_p",
    "repetition_penalty": "decoder.repetition_penalty",
    "no_repeat_ngram_size": "decoder.no_repeat_ngram_size",
    "eos_token_id": "(set by the backend: generation runs exactly output_tokens)",
    "pad_token_id": "(set by the backend)",
    "bos_token_id": "(set by the backend)",
    "generation_config": "(built by the backend from the typed fields)",
    "num_beams": "transformers.num_beams",
    "length_penalty": "transformers.length_penalty",
    "early_stopping": "transformers.early_stopping",
    "use_cache": "transformers.use_cache",
    "cache_implementation": "transformers.cache_implementation",
    "max_cache_len": "transformers.max_cache_len",
    "prefill_chunk_size": "transformers.prefill_chunk_size",
    "compile_config": "transformers.torch_compile",
    "disable_compile": "transformers.torch_compile",
    "assistant_model": "transformers.assistant_model",
    "num_assistant_tokens": "transformers.num_assistant_tokens",
    "num_assistant_tokens_schedule": "transformers.num_assistant_tokens_schedule",
    "prompt_lookup_num_tokens": "transformers.prompt_lookup_num_tokens",
    "output_scores": "transformers.output_scores",
    "output_logits": "transformers.output_logits",
    "return_dict_in_generate": "transformers.output_scores / output_logits",
    "cache_config": "transformers.quantized_cache",
    "guidance_scale": "transformers.guidance_scale",
    "num_return_sequences": "transformers.num_return_sequences",
    "max_matching_ngram_size": "transformers.max_matching_ngram_size",
    "assistant_confidence_threshold": "transformers.assistant_confidence_threshold",
    "assistant_early_exit": "transformers.assistant_early_exit",
    "use_mtp": "transformers.use_mtp",
}


def _owned_conflicts(keys: Any, owned: dict[str, str], where: str) -> list[str]:
    return [f"extra.{where}.{key} is set by `{owned[key]}`; use that instead" for key in keys if key in owned]


class TransformersExtra(StrictModel):
    """Keywords passed verbatim to the engine, for parameters without a typed field."""

    load: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra keyword arguments for `from_pretrained`, verbatim. Keys owned by a typed field are rejected.",
    )
    generate: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra keyword arguments for `generate`, verbatim. Keys owned by a typed field are rejected.",
    )

    @model_validator(mode="after")
    def _no_owned_keys(self) -> TransformersExtra:
        problems = _owned_conflicts(self.load, LOAD_KEYS_OWNED, "load")
        problems += _owned_conflicts(self.generate, GENERATE_KEYS_OWNED, "generate")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TransformersQuantization(StrictModel):
    """bitsandbytes weight quantisation, passed as `quantization_config=BitsAndBytesConfig(...)` (needs CUDA and bitsandbytes)."""

    load_in_4bit: bool = Field(False, description="Quantise linear layers to 4 bit (bitsandbytes).")
    load_in_8bit: bool = Field(False, description="Quantise linear layers to 8 bit (bitsandbytes LLM.int8).")
    bnb_4bit_compute_dtype: DtypeName | None = Field(
        None, description="Compute dtype of 4-bit layers (bitsandbytes default: float32). Needs `load_in_4bit`."
    )
    bnb_4bit_quant_type: Literal["fp4", "nf4"] | None = Field(
        None, description="4-bit data type (bitsandbytes default: fp4). Needs `load_in_4bit`."
    )
    bnb_4bit_use_double_quant: bool | None = Field(
        None, description="Quantise the quantisation constants too (saves ~0.4 bit/parameter). Needs `load_in_4bit`."
    )
    llm_int8_threshold: float | None = Field(
        None, gt=0.0, description="Outlier threshold of 8-bit matmuls (bitsandbytes default 6.0). Needs `load_in_8bit`."
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Other `BitsAndBytesConfig` keywords, verbatim (typed ones are rejected here)."
    )

    @property
    def enabled(self) -> bool:
        return self.load_in_4bit or self.load_in_8bit

    @model_validator(mode="after")
    def _consistent(self) -> TransformersQuantization:
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit are exclusive")
        four_bit_options = [
            name
            for name in ("bnb_4bit_compute_dtype", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant")
            if getattr(self, name) is not None
        ]
        if four_bit_options and not self.load_in_4bit:
            raise ValueError(f"{', '.join(four_bit_options)} only apply with load_in_4bit: true")
        if self.llm_int8_threshold is not None and not self.load_in_8bit:
            raise ValueError("llm_int8_threshold only applies with load_in_8bit: true")
        typed = [key for key in self.extra if key in type(self).model_fields]
        if typed:
            raise ValueError(f"quantization.extra.{typed[0]} is a typed field: set quantization.{typed[0]}")
        if self.extra and not self.enabled:
            raise ValueError("quantization.extra needs load_in_4bit or load_in_8bit")
        return self

    def bnb_kwargs(self) -> dict[str, Any]:
        """The ``BitsAndBytesConfig`` keywords this section sets (empty when off)."""
        if not self.enabled:
            return {}
        values = self.model_dump(exclude_none=True, exclude={"extra"})
        return {**values, **self.extra}


class QuantizedCacheSettings(StrictModel):
    """Quantised KV cache, passed as `generate(cache_config=...)` with `cache_implementation: quantized`."""

    backend: Literal["quanto", "HQQ"] = Field("quanto", description="Quantisation library (optimum-quanto or HQQ).")
    nbits: Literal[2, 4, 8] = Field(4, description="Bits per cached key/value element.")
    q_group_size: int | None = Field(None, ge=1, description="Quantisation group size (transformers default 64).")
    residual_length: int | None = Field(
        None, ge=0, description="Most recent tokens kept unquantised (transformers default 128)."
    )


class TransformersConfig(StrictModel):
    """PyTorch / Hugging Face transformers engine settings."""

    # --- batching -------------------------------------------------------------------------------
    batching_strategy: Literal["static", "sorted"] = Field(
        "static",
        description="`static`: batches in prompt order; `sorted`: prompts sorted by token length, longest first, "
        "before batching (less padding).",
    )

    # --- loading (from_pretrained) ---------------------------------------------------------------
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention"] = Field(
        "sdpa",
        description="Attention kernel passed to `from_pretrained`. A flash-attention kernel that is not installed "
        "is an error (never a silent fallback).",
    )
    device_map: str | dict[str, int | str] | None = Field(
        None,
        description="Where the weights go: a device (`cpu`, `cuda:0`), a strategy (`auto`, `balanced`, "
        "`balanced_low_0`, `sequential`; needs accelerate) or a module-to-device map. Default: `cuda:0` when CUDA "
        "is available, else `cpu`.",
    )
    max_memory: dict[int | str, int | str] | None = Field(
        None,
        description="Memory cap per device for a spreading `device_map` (e.g. `{0: 70GiB, cpu: 200GiB}`).",
    )
    offload_folder: str | None = Field(
        None, description="Folder for weights offloaded to disk by a spreading `device_map`."
    )
    low_cpu_mem_usage: bool | None = Field(
        None,
        description="Load without a full extra copy in CPU memory. transformers >= 5 always does so: `true` is "
        "recorded as a warning there, `false` is an error.",
    )
    trust_remote_code: bool = Field(False, description="Run modelling code shipped in the model repository.")
    use_kernels: bool = Field(
        False, description="Replace layers with optimised Hub kernels (`kernels` package) at load."
    )
    experts_implementation: Literal["eager", "grouped_mm", "batched_mm", "deepgemm", "sonicmoe"] | None = Field(
        None, description="Mixture-of-experts kernel (MoE models only); default: transformers' choice."
    )
    quantization: TransformersQuantization = Field(
        default_factory=TransformersQuantization, description="bitsandbytes 4/8-bit weight quantisation."
    )
    float32_matmul_precision: Literal["highest", "high", "medium"] | None = Field(
        None,
        description="`torch.set_float32_matmul_precision` while this session runs (`high` allows TF32 on "
        "Ampere and later). Default: leave torch's setting alone.",
    )

    # --- compilation -------------------------------------------------------------------------------
    torch_compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = Field(
        "off",
        description="torch.compile mode. With a static cache transformers compiles the decoding step "
        "(`compile_config`); with a dynamic cache the model's forward is compiled at load. `off` also stops "
        "transformers' automatic compilation (`disable_compile`).",
    )
    torch_compile_backend: Literal["inductor", "cudagraphs", "aot_eager", "eager"] | None = Field(
        None, description="torch.compile backend (default inductor). Needs `torch_compile` other than `off`."
    )

    # --- KV cache -------------------------------------------------------------------------------------
    use_cache: bool = Field(True, description="Keep the key/value cache between decoding steps.")
    cache_implementation: Literal["dynamic", "static", "offloaded", "offloaded_static", "quantized"] = Field(
        "dynamic",
        description="KV cache class passed to `generate` (`quantized`: settings in `quantized_cache`, needs "
        "optimum-quanto or HQQ installed).",
    )
    max_cache_len: int | None = Field(
        None, ge=1, description="Length of a static cache (default: prompt + output). Static caches only."
    )
    prefill_chunk_size: int | None = Field(
        None, ge=1, description="Process the prompt in chunks of this many tokens (lower peak memory)."
    )
    quantized_cache: QuantizedCacheSettings | None = Field(
        None, description="Settings of the quantised KV cache (only with cache_implementation: quantized)."
    )

    # --- search ------------------------------------------------------------------------------------------
    num_beams: int = Field(1, ge=1, le=64, description="Beam search width (1 = no beam search).")
    length_penalty: float | None = Field(
        None, description="Beam score length exponent; only meaningful with num_beams > 1 (else a warning)."
    )
    early_stopping: bool | Literal["never"] | None = Field(
        None, description="Beam search stopping rule; only meaningful with num_beams > 1 (else a warning)."
    )
    num_return_sequences: int = Field(
        1, ge=1, le=64, description="Sequences returned per prompt (sampling or beams); each counts its output tokens."
    )
    guidance_scale: float | None = Field(
        None, ge=0.0, description="Classifier-free guidance scale; > 1 runs an extra unconditional pass every step."
    )

    # --- speculative decoding -------------------------------------------------------------------------
    assistant_model: str | None = Field(
        None,
        description="Draft model for assisted generation: hub id, local path or shipped architecture name. "
        "Needs batch_size 1 and num_beams 1; must share the main model's tokenizer.",
    )
    assistant_weights: Literal["pretrained", "random"] | None = Field(
        None,
        description="Weights of the assistant (default: same as model.weights). Random assistants get the main "
        "model's vocabulary size.",
    )
    num_assistant_tokens: int | None = Field(
        None, ge=1, le=128, description="Draft tokens proposed per step (transformers default 20)."
    )
    num_assistant_tokens_schedule: Literal["constant", "heuristic", "heuristic_transient"] | None = Field(
        None, description="How the number of draft tokens adapts (transformers default: constant)."
    )
    assistant_confidence_threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="Stop drafting when the assistant's confidence drops below this (default 0.4)."
    )
    prompt_lookup_num_tokens: int | None = Field(
        None,
        ge=1,
        le=128,
        description="Prompt lookup decoding: draft this many tokens by n-gram matching in the prompt (no draft "
        "model). Needs batch_size 1 and num_beams 1.",
    )
    max_matching_ngram_size: int | None = Field(
        None, ge=1, description="Longest n-gram prompt lookup matches (transformers default 2)."
    )
    assistant_early_exit: int | None = Field(
        None, ge=1, description="Self-speculation: draft with the model's first N layers (early-exit models)."
    )
    use_mtp: bool = Field(False, description="Self-speculation with the model's multi-token-prediction heads.")

    # --- outputs --------------------------------------------------------------------------------------
    output_scores: bool = Field(
        False, description="Keep the processed scores of every step (memory and time grow with the vocabulary)."
    )
    output_logits: bool = Field(False, description="Keep the raw logits of every step.")

    extra: TransformersExtra = Field(default_factory=TransformersExtra, description="Pass-through keywords.")

    @field_validator("device_map")
    @classmethod
    def _device_map_known(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in SPREADING_DEVICE_MAPS and not _DEVICE_PATTERN.match(value):
            raise ValueError(
                f"device_map {value!r} is neither a device (cpu, cuda, cuda:N) nor one of "
                f"{', '.join(SPREADING_DEVICE_MAPS)}"
            )
        if isinstance(value, dict) and not value:
            raise ValueError("device_map cannot be an empty mapping")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TransformersConfig:
        problems: list[str] = []
        spreading = isinstance(self.device_map, dict) or self.device_map in SPREADING_DEVICE_MAPS
        if self.max_memory is not None and not spreading:
            problems.append(
                f"max_memory only applies with a spreading device_map ({', '.join(SPREADING_DEVICE_MAPS)} or a map)"
            )
        if self.offload_folder is not None and not spreading:
            problems.append("offload_folder only applies with a spreading device_map")
        if not self.use_cache and self.cache_implementation != "dynamic":
            problems.append(f"cache_implementation {self.cache_implementation!r} needs use_cache: true")
        if self.max_cache_len is not None and self.cache_implementation not in ("static", "offloaded_static"):
            problems.append("max_cache_len only applies with cache_implementation static or offloaded_static")
        if self.torch_compile_backend is not None and self.torch_compile == "off":
            problems.append("torch_compile_backend needs torch_compile other than off")
        drafting = self.draft_sources
        if len(drafting) > 1:
            problems.append(f"{' and '.join(drafting)} are exclusive (one draft source)")
        if drafting and self.num_beams > 1:
            problems.append(f"{drafting[0]} (speculative decoding) does not combine with num_beams > 1")
        for name in (
            "assistant_weights",
            "num_assistant_tokens",
            "num_assistant_tokens_schedule",
            "assistant_confidence_threshold",
        ):
            if getattr(self, name) is not None and self.assistant_model is None:
                problems.append(f"{name} needs assistant_model")
        if self.max_matching_ngram_size is not None and self.prompt_lookup_num_tokens is None:
            problems.append("max_matching_ngram_size needs prompt_lookup_num_tokens")
        if self.quantized_cache is not None and self.cache_implementation != "quantized":
            problems.append("quantized_cache needs cache_implementation: quantized")
        if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
            problems.append("num_return_sequences cannot exceed num_beams")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def advisories(self) -> list[str]:
        """Settings that are legal but have no effect here: recorded as warnings, not errors."""
        notes = []
        if self.num_beams == 1:
            for name in ("length_penalty", "early_stopping"):
                if getattr(self, name) is not None:
                    notes.append(f"transformers.{name} has no effect with num_beams: 1")
        if self.torch_compile not in ("off", "default") and self.compile_options()["mode"] is None:
            notes.append(f"transformers.torch_compile {self.torch_compile!r} is an inductor mode: with backend "
                         f"{self.torch_compile_backend!r} it is not passed (the backend takes no mode)")
        return notes

    def compile_options(self) -> dict[str, str | None]:
        """``torch.compile`` backend and mode: the mode only for inductor (other backends reject it)."""
        backend = self.torch_compile_backend or "inductor"
        return {"mode": self.torch_compile if backend == "inductor" else None, "backend": backend}

    @property
    def draft_sources(self) -> list[str]:
        """The speculative-decoding sources this section enables (at most one is valid)."""
        names = ("assistant_model", "prompt_lookup_num_tokens", "assistant_early_exit")
        found = [name for name in names if getattr(self, name) is not None]
        return found + (["use_mtp"] if self.use_mtp else [])

    @property
    def speculative(self) -> bool:
        return bool(self.draft_sources)
