"""The EngineArgs field names of vLLM 0.32 (those the tests need, plus a few others); no swap_space."""

from dataclasses import field, make_dataclass

_NAMES = (
    "model", "tokenizer", "skip_tokenizer_init", "revision", "dtype", "seed", "max_num_seqs", "max_num_batched_tokens",
    "gpu_memory_utilization", "kv_cache_memory_bytes", "cpu_offload_gb", "kv_offloading_size", "tensor_parallel_size",
    "pipeline_parallel_size", "data_parallel_size", "distributed_executor_backend", "disable_custom_all_reduce",
    "enable_expert_parallel", "enable_prefix_caching", "enable_chunked_prefill", "kv_cache_dtype", "block_size",
    "max_model_len", "enforce_eager", "optimization_level", "performance_mode", "compilation_config",
    "async_scheduling", "long_prefill_token_threshold", "attention_backend", "disable_sliding_window", "quantization",
    "speculative_config", "enable_lora", "max_loras", "max_lora_rank", "max_cpu_loras", "fully_sharded_loras",
    "max_logprobs", "disable_log_stats", "num_gpu_blocks_override", "scheduling_policy", "load_format",
)

EngineArgs = make_dataclass("EngineArgs", [(name, object, field(default=None)) for name in _NAMES])
