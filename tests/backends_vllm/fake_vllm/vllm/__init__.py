"""A fake ``vllm`` for the CPU-only main test suite: records every ``LLM(...)`` / ``SamplingParams(...)``
call and answers ``generate`` with deterministic token ids and per-request metrics.

It checks keywords like vLLM 0.32 does: ``LLM`` accepts only ``EngineArgs`` fields, ``SamplingParams``
only its own fields, so a misspelt keyword fails here as it would in the real engine.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from types import SimpleNamespace
from typing import Any

from .engine.arg_utils import EngineArgs
from .engine_core import FakeEngine
from .v1.metrics.stats import RequestStateStats

__version__ = "0.32.0+fake"
VOCAB = 1000
#: every call, in order: ("LLM", kwargs), ("SamplingParams", kwargs), ("generate", {...}), ("shutdown", {})
CALLS: list[tuple[str, dict[str, Any]]] = []

_SAMPLING_FIELDS = (
    "n", "presence_penalty", "frequency_penalty", "repetition_penalty", "temperature", "top_p", "top_k", "min_p",
    "seed", "stop", "stop_token_ids", "ignore_eos", "max_tokens", "min_tokens", "logprobs", "prompt_logprobs",
    "detokenize", "skip_special_tokens", "logit_bias", "allowed_token_ids", "bad_words", "structured_outputs",
    "extra_args", "include_stop_str_in_output",
)


class SamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        unknown = [k for k in kwargs if k not in _SAMPLING_FIELDS]
        if unknown:
            raise TypeError(f"SamplingParams got unexpected keyword arguments {unknown}")
        if kwargs.get("min_tokens", 0) > kwargs.get("max_tokens", 16):
            raise ValueError("min_tokens must be <= max_tokens")
        self.kwargs = dict(kwargs)
        for name in _SAMPLING_FIELDS:
            setattr(self, name, kwargs.get(name))
        CALLS.append(("SamplingParams", dict(kwargs)))


class FakeTokenizer:
    """Word-level: each word maps to a stable id in [3, VOCAB); ids 0, 1, 2 are pad, bos, eos."""

    all_special_ids = [0, 1, 2]

    def __len__(self) -> int:
        return VOCAB

    def encode_one(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [3 + sum(map(ord, word)) % (VOCAB - 3) for word in text.split()]
        return ([1] if add_special_tokens else []) + ids

    def __call__(self, texts: list[str], add_special_tokens: bool = True, truncation: bool = False,
                 max_length: int | None = None) -> dict[str, list[list[int]]]:
        out = [self.encode_one(t, add_special_tokens) for t in texts]
        if truncation and max_length is not None:
            out = [ids[:max_length] for ids in out]
        return {"input_ids": out}


class LLM:
    _ids = itertools.count()

    def __init__(self, model: str, **kwargs: Any) -> None:
        names = {f.name for f in dataclasses.fields(EngineArgs)}
        unknown = [k for k in kwargs if k not in names]
        if unknown:
            raise TypeError(f"EngineArgs.__init__() got unexpected keyword arguments {unknown}")
        self.kwargs = {"model": model, **kwargs}
        CALLS.append(("LLM", dict(self.kwargs)))
        get = kwargs.get
        self.llm_engine = SimpleNamespace(
            model_config=SimpleNamespace(
                hf_config=SimpleNamespace(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2, pad_token_id=0)
            ),
            vllm_config=SimpleNamespace(
                model_config=SimpleNamespace(dtype=get("dtype"), max_model_len=get("max_model_len") or 2048,
                                             quantization=get("quantization"), enforce_eager=bool(get("enforce_eager")),
                                             seed=get("seed")),
                cache_config=SimpleNamespace(block_size=get("block_size") or 16, cache_dtype=get("kv_cache_dtype") or "auto",
                                             enable_prefix_caching=get("enable_prefix_caching"), num_gpu_blocks=100),
                scheduler_config=SimpleNamespace(max_num_seqs=get("max_num_seqs") or 256,
                                                 max_num_batched_tokens=get("max_num_batched_tokens") or 8192,
                                                 async_scheduling=bool(get("async_scheduling"))),
                parallel_config=SimpleNamespace(tensor_parallel_size=get("tensor_parallel_size") or 1),
                compilation_config=SimpleNamespace(cudagraph_mode=(get("compilation_config") or {}).get("cudagraph_mode")),
                device_config=SimpleNamespace(device_type="cuda"),
                speculative_config=None,
            ),
            engine_core=SimpleNamespace(shutdown=lambda: CALLS.append(("shutdown", {}))),
            collective_rpc=lambda method: [f"FakeModel() via {method}"],
        )
        engine = FakeEngine(get("max_num_seqs") or 256, self._output)
        for name in ("add_request", "step", "has_unfinished_requests"):
            setattr(self.llm_engine, name, getattr(engine, name))
        self.tokenizer = FakeTokenizer()

    def get_tokenizer(self) -> FakeTokenizer:
        return self.tokenizer

    def __repr__(self) -> str:
        """Like vLLM's: the engine core's model inspection, waited for without a deadline."""
        return str(self.llm_engine.collective_rpc("get_model_inspection")[0])

    def generate(self, prompts: list[Any], sampling_params: SamplingParams, use_tqdm: bool = True,
                 lora_request: Any = None) -> list[Any]:
        CALLS.append(("generate", {"prompts": list(prompts), "sampling_params": sampling_params,
                                   "lora_request": lora_request}))
        # every request of the call runs together: scheduled now, first tokens 1 ms apart, 10 ms per token,
        # and the call returns when the last one is done (stamps on time.monotonic, like vLLM's engine core)
        t0 = time.monotonic()
        outputs = []
        for k, prompt in enumerate(prompts):
            length = sampling_params.max_tokens
            first = t0 + 0.001 * (k + 1)
            metrics = RequestStateStats(num_generation_tokens=length, arrival_time=time.time(), queued_ts=t0,
                                        scheduled_ts=t0, first_token_ts=first,
                                        last_token_ts=first + 0.01 * (length - 1), first_token_latency=0.02)
            outputs.append(self._output(prompt, sampling_params, metrics))
        end = max((o.metrics.last_token_ts for o in outputs), default=t0)
        while time.monotonic() < end:  # the engine's work takes its time
            time.sleep(end - time.monotonic())
        return outputs

    def _output(self, prompt: Any, sampling_params: SamplingParams, metrics: RequestStateStats) -> Any:
        n = sampling_params.n or 1
        ids = self.tokenizer.encode_one(prompt) if isinstance(prompt, str) else list(prompt["prompt_token_ids"])
        length = sampling_params.max_tokens
        completions = [SimpleNamespace(token_ids=[(sum(ids) + i + j) % VOCAB for i in range(length)], text="")
                       for j in range(n)]
        return SimpleNamespace(request_id=str(next(self._ids)), prompt_token_ids=ids, outputs=completions,
                               metrics=metrics, finished=True)
