"""Fake TensorRT-LLM (see README.md): records calls, generates deterministic token ids."""

from .llmapi import (  # noqa: F401
    CALLS,
    LLM,
    BatchingType,
    BuildConfig,
    CalibConfig,
    CapacitySchedulerPolicy,
    ContextChunkingPolicy,
    DraftTargetDecodingConfig,
    KvCacheConfig,
    KVCacheType,
    PluginConfig,
    QuantAlgo,
    QuantConfig,
    SamplingParams,
    SchedulerConfig,
    SpeculativeDecodingMode,
)

__version__ = "0.20.0+fake"
