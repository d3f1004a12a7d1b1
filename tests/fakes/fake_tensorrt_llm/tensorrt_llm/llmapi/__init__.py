"""The fake `tensorrt_llm.llmapi`: the configuration classes and `LLM`, strict about keywords."""

from __future__ import annotations

import datetime
import enum
import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

#: every call, in order: (name, keywords)
CALLS: list[tuple[str, dict[str, Any]]] = []
VOCAB = 1000


class QuantAlgo(enum.Enum):
    W8A16 = "W8A16"
    W4A16 = "W4A16"
    W4A16_AWQ = "W4A16_AWQ"
    W4A8_AWQ = "W4A8_AWQ"
    W4A16_GPTQ = "W4A16_GPTQ"
    W8A8_SQ_PER_CHANNEL = "W8A8_SQ_PER_CHANNEL"
    FP8 = "FP8"
    INT8 = "INT8"
    NVFP4 = "NVFP4"
    NO_QUANT = "NO_QUANT"


class KVCacheType(enum.Enum):
    PAGED = "PAGED"
    CONTINUOUS = "CONTINUOUS"
    DISABLED = "DISABLED"


class CapacitySchedulerPolicy(enum.Enum):
    MAX_UTILIZATION = "MAX_UTILIZATION"
    GUARANTEED_NO_EVICT = "GUARANTEED_NO_EVICT"
    STATIC_BATCH = "STATIC_BATCH"


class ContextChunkingPolicy(enum.Enum):
    FIRST_COME_FIRST_SERVED = "FIRST_COME_FIRST_SERVED"
    EQUAL_PROGRESS = "EQUAL_PROGRESS"


class BatchingType(enum.Enum):
    STATIC = "STATIC"
    INFLIGHT = "INFLIGHT"


class SpeculativeDecodingMode(enum.Enum):
    NONE = "NONE"
    DRAFT_TOKENS_EXTERNAL = "DRAFT_TOKENS_EXTERNAL"


def _record(obj: Any) -> None:
    CALLS.append((type(obj).__name__, {f.name: getattr(obj, f.name) for f in fields(obj)}))


@dataclass
class PluginConfig:
    gemm_plugin: str | None = None
    gpt_attention_plugin: str = "auto"
    context_fmha: bool = True
    use_fp8_context_fmha: bool = False
    use_paged_context_fmha: bool = False
    multiple_profiles: bool = False
    remove_input_padding: bool = True
    use_fused_mlp: bool = True
    reduce_fusion: bool = False
    tokens_per_block: int = 64
    paged_kv_cache: bool | None = None


@dataclass
class BuildConfig:
    max_input_len: int = 1024
    max_seq_len: int | None = None
    opt_batch_size: int = 8
    max_batch_size: int = 2048
    max_beam_width: int = 1
    max_num_tokens: int = 8192
    opt_num_tokens: int | None = None
    kv_cache_type: KVCacheType | None = None
    strongly_typed: bool = True
    builder_opt: int | None = None
    max_draft_len: int = 0
    speculative_decoding_mode: SpeculativeDecodingMode = SpeculativeDecodingMode.NONE
    weight_sparsity: bool = False
    weight_streaming: bool = False
    gather_context_logits: bool = False
    use_refit: bool = False
    plugin_config: PluginConfig = field(default_factory=PluginConfig)

    def __post_init__(self) -> None:
        if self.kv_cache_type is not None and not isinstance(self.kv_cache_type, KVCacheType):
            raise TypeError(f"kv_cache_type must be a KVCacheType, not {self.kv_cache_type!r}")
        _record(self)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kv_cache_type"] = self.kv_cache_type.name if self.kv_cache_type else None
        out["speculative_decoding_mode"] = self.speculative_decoding_mode.name
        return out


@dataclass
class QuantConfig:
    quant_algo: QuantAlgo | None = None
    kv_cache_quant_algo: QuantAlgo | None = None
    group_size: int = 128
    smoothquant_val: float = 0.5
    has_zero_point: bool = False

    def __post_init__(self) -> None:
        for name in ("quant_algo", "kv_cache_quant_algo"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, QuantAlgo):
                raise TypeError(f"{name} must be a QuantAlgo, not {value!r}")
        _record(self)


@dataclass
class CalibConfig:
    device: str = "cuda"
    calib_dataset: str = "cnn_dailymail"
    calib_batches: int = 512
    calib_batch_size: int = 1
    calib_max_seq_length: int = 512

    def __post_init__(self) -> None:
        _record(self)


@dataclass
class KvCacheConfig:
    enable_block_reuse: bool = True
    max_tokens: int | None = None
    max_attention_window: list[int] | None = None
    free_gpu_memory_fraction: float | None = None
    host_cache_size: int | None = None

    def __post_init__(self) -> None:
        _record(self)


@dataclass
class SchedulerConfig:
    capacity_scheduler_policy: CapacitySchedulerPolicy = CapacitySchedulerPolicy.GUARANTEED_NO_EVICT
    context_chunking_policy: ContextChunkingPolicy | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.capacity_scheduler_policy, CapacitySchedulerPolicy):
            raise TypeError("capacity_scheduler_policy must be a CapacitySchedulerPolicy")
        _record(self)


@dataclass
class DraftTargetDecodingConfig:
    max_draft_len: int | None = None
    speculative_model: str | None = None

    def __post_init__(self) -> None:
        _record(self)


@dataclass
class SamplingParams:
    max_tokens: int = 32
    min_tokens: int | None = None
    ignore_eos: bool = False
    end_id: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    no_repeat_ngram_size: int | None = None
    beam_width: int = 1
    presence_penalty: float | None = None
    #: TensorRT-LLM >= 0.20: completions carry request_perf_metrics.timing_metrics (timedelta, steady clock)
    return_perf_metrics: bool = False

    def __post_init__(self) -> None:
        _record(self)


def _perf(arrival: float, scheduled: float, first: float, last: float) -> Any:
    td = datetime.timedelta
    timing = SimpleNamespace(arrival_time=td(seconds=arrival), first_scheduled_time=td(seconds=scheduled),
                             first_token_time=td(seconds=first), last_token_time=td(seconds=last))
    return SimpleNamespace(timing_metrics=timing)


_LLM_KEYWORDS = {
    "tokenizer", "dtype", "revision", "tensor_parallel_size", "pipeline_parallel_size", "build_config",
    "quant_config", "calib_config", "kv_cache_config", "scheduler_config", "enable_chunked_prefill",
    "batching_type", "speculative_config", "trust_remote_code", "enable_tqdm", "iter_stats_max_iterations",
    "normalize_log_probs", "max_prompt_adapter_token", "gpus_per_node",
}
_TYPED = {
    "build_config": BuildConfig, "quant_config": QuantConfig, "calib_config": CalibConfig,
    "kv_cache_config": KvCacheConfig, "scheduler_config": SchedulerConfig,
    "speculative_config": DraftTargetDecodingConfig, "batching_type": BatchingType,
}


class _Tokenizer:
    all_special_ids = [0, 1, 2]

    def __len__(self) -> int:
        return VOCAB

    def __call__(self, texts: list[str], add_special_tokens: bool = True, truncation: bool = False,
                 max_length: int | None = None) -> dict[str, list[list[int]]]:
        out = [([1] if add_special_tokens else []) + [3 + sum(map(ord, w)) % (VOCAB - 3) for w in t.split()] for t in texts]
        return {"input_ids": [ids[:max_length] for ids in out] if truncation and max_length else out}


class LLM:
    def __init__(self, model: str, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - _LLM_KEYWORDS)
        if unknown:
            raise TypeError(f"LLM got unexpected keyword arguments {unknown}")
        for name, cls in _TYPED.items():
            if kwargs.get(name) is not None and not isinstance(kwargs[name], cls):
                raise TypeError(f"{name} must be a {cls.__name__}, not {type(kwargs[name]).__name__}")
        self.model = model
        self.kwargs = kwargs
        self.prebuilt = (Path(model) / "fake_engine.json").is_file()
        CALLS.append(("LLM", {"model": model, "prebuilt": self.prebuilt, **kwargs}))
        self.tokenizer = SimpleNamespace(tokenizer=_Tokenizer())

    def save(self, engine_dir: str) -> None:
        build = self.kwargs.get("build_config")
        Path(engine_dir).mkdir(parents=True, exist_ok=True)
        Path(engine_dir, "fake_engine.json").write_text(json.dumps({"build_config": build.to_dict() if build else None},
                                                                   default=str))
        CALLS.append(("save", {"engine_dir": engine_dir}))

    def _tokens(self, prompt: list[int], params: SamplingParams) -> list[int]:
        return [(sum(prompt) + i) % VOCAB for i in range(params.max_tokens)]

    def generate(self, inputs: list[list[int]], sampling_params: SamplingParams) -> list[Any]:
        if not isinstance(sampling_params, SamplingParams):
            raise TypeError("sampling_params must be a SamplingParams")
        CALLS.append(("generate", {"inputs": inputs, "sampling_params": sampling_params}))
        t0 = time.monotonic()
        outs = [SimpleNamespace(prompt_token_ids=list(p), outputs=[SimpleNamespace(token_ids=self._tokens(p, sampling_params))])
                for p in inputs]
        if sampling_params.return_perf_metrics:
            # in-flight batching in miniature: all scheduled at once, first tokens after a 5 ms context
            # phase, then 2 ms per token; the call returns when the last request is done
            for o in outs:
                o.outputs[0].request_perf_metrics = _perf(t0, t0 + 0.001, t0 + 0.006,
                                                          t0 + 0.006 + 0.002 * (sampling_params.max_tokens - 1))
            end = t0 + 0.006 + 0.002 * (sampling_params.max_tokens - 1)
            while time.monotonic() < end:
                time.sleep(end - time.monotonic())
        return outs

    def generate_async(self, inputs: list[int], sampling_params: SamplingParams, streaming: bool = False) -> Any:
        CALLS.append(("generate_async", {"inputs": inputs, "streaming": streaming}))
        tokens = self._tokens(inputs, sampling_params)

        def chunks():
            for i in range(1, len(tokens) + 1):
                yield SimpleNamespace(prompt_token_ids=list(inputs), outputs=[SimpleNamespace(token_ids=tokens[:i])])

        return chunks()

    def shutdown(self) -> None:
        CALLS.append(("shutdown", {}))
