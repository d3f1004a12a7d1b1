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

from .base import StrictModel

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
        return self

    def bnb_kwargs(self) -> dict[str, Any]:
        """The ``BitsAndBytesConfig`` keywords this section sets (empty when off)."""
        if not self.enabled:
            return {}
        return self.model_dump(exclude_none=True, exclude_defaults=False)


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
        description="KV cache class passed to `generate` (`quantized` needs `extra.generate.cache_config` and a "
        "quantisation backend).",
    )
    max_cache_len: int | None = Field(
        None, ge=1, description="Length of a static cache (default: prompt + output). Static caches only."
    )
    prefill_chunk_size: int | None = Field(
        None, ge=1, description="Process the prompt in chunks of this many tokens (lower peak memory)."
    )

    # --- search ------------------------------------------------------------------------------------------
    num_beams: int = Field(1, ge=1, le=64, description="Beam search width (1 = no beam search).")
    length_penalty: float | None = Field(
        None, description="Beam score length exponent; only meaningful with num_beams > 1 (else a warning)."
    )
    early_stopping: bool | Literal["never"] | None = Field(
        None, description="Beam search stopping rule; only meaningful with num_beams > 1 (else a warning)."
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
    prompt_lookup_num_tokens: int | None = Field(
        None,
        ge=1,
        le=128,
        description="Prompt lookup decoding: draft this many tokens by n-gram matching in the prompt (no draft "
        "model). Needs batch_size 1 and num_beams 1.",
    )

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
        drafting = [name for name in ("assistant_model", "prompt_lookup_num_tokens") if getattr(self, name) is not None]
        if len(drafting) > 1:
            problems.append("assistant_model and prompt_lookup_num_tokens are exclusive (one draft source)")
        if drafting and self.num_beams > 1:
            problems.append(f"{drafting[0]} (speculative decoding) does not combine with num_beams > 1")
        for name in ("assistant_weights", "num_assistant_tokens", "num_assistant_tokens_schedule"):
            if getattr(self, name) is not None and self.assistant_model is None:
                problems.append(f"{name} needs assistant_model")
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
        return notes

    @property
    def speculative(self) -> bool:
        return self.assistant_model is not None or self.prompt_lookup_num_tokens is not None
