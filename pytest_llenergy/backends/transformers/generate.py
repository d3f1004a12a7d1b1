"""The measured generate loop and what surrounds it: kwargs, inputs, streaming timers, token counts.

No pydantic; torch is imported inside functions. The loop itself is kept to a timer, one
``generate`` call and an append per batch: everything else happens before or after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from pytest_llenergy.backends.capture import WarningCapture
from pytest_llenergy.backends.errors import BackendError

SAMPLING_ONLY = ("temperature", "top_k", "top_p", "min_p")


class EngineWarnings(WarningCapture):
    """Collect Python warnings and transformers' logged warnings as strings (deduplicated, in order)."""

    LOGGERS = ("transformers",)


class TimingStreamer:
    """A ``generate`` streamer that timestamps every pushed token (batch 1).

    transformers pushes the prompt first, then each new token (or each accepted chunk under
    speculative decoding). On CUDA each push synchronises, so a timestamp means "token ready".
    """

    def __init__(self, sync: Any = None) -> None:
        self.sync = sync
        self.reset()

    def reset(self) -> None:
        self.times: list[float] = []
        self.counts: list[int] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        if self.sync is not None:
            self.sync()
        self.times.append(perf_counter())
        self.counts.append(int(value.numel()))

    def end(self) -> None:
        pass

    def latencies(self, started: float) -> tuple[float | None, list[float]]:
        """(time to first token, inter-token latencies): a chunk of k tokens gives k equal gaps."""
        if not self.times:
            return None, []
        itl: list[float] = []
        for i in range(1, len(self.times)):
            gap = (self.times[i] - self.times[i - 1]) / max(self.counts[i], 1)
            itl.extend([gap] * self.counts[i])
        return self.times[0] - started, itl


def experiment_generate_kwargs(experiment: Any) -> tuple[dict[str, Any], list[str]]:
    """``generate`` keywords from the decoder and the transformers section (not the workload)."""
    section = experiment.transformers
    decoder = experiment.decoder.resolved()
    kwargs: dict[str, Any] = {}
    notes: list[str] = list(section.advisories())
    do_sample = bool(decoder.get("do_sample"))
    kwargs["do_sample"] = do_sample
    if do_sample:
        if decoder.get("temperature") == 0:
            raise BackendError("decoder: do_sample with temperature 0 is contradictory; use temperature > 0 or greedy")
        kwargs.update({k: decoder[k] for k in SAMPLING_ONLY if decoder.get(k) is not None})
    else:
        explicit = experiment.decoder.model_dump(exclude_none=True)
        for key in SAMPLING_ONLY:
            if key in explicit and not (key == "temperature" and explicit[key] == 0):
                notes.append(f"decoder.{key}={explicit[key]!r} has no effect with greedy decoding (not passed)")
    for key in ("repetition_penalty", "no_repeat_ngram_size"):
        if decoder.get(key) is not None:
            kwargs[key] = decoder[key]
    kwargs["num_beams"] = section.num_beams
    kwargs["num_return_sequences"] = section.num_return_sequences
    if section.num_return_sequences > 1 and not do_sample and section.num_beams == 1:
        raise BackendError("num_return_sequences > 1 needs sampling (decoder) or beam search (num_beams)")
    for key in ("length_penalty", "early_stopping", "guidance_scale", "max_cache_len", "prefill_chunk_size"):
        if getattr(section, key) is not None:
            kwargs[key] = getattr(section, key)
    kwargs["use_cache"] = section.use_cache
    kwargs["cache_implementation"] = section.cache_implementation
    if section.quantized_cache is not None:
        kwargs["cache_config"] = section.quantized_cache.model_dump(exclude_none=True)
    if section.torch_compile == "off":
        kwargs["disable_compile"] = True
    elif section.cache_implementation in ("static", "offloaded_static"):
        from transformers.generation.configuration_utils import CompileConfig

        config = CompileConfig(**section.compile_options())
        config._compile_all_devices = True  # the user asked for compilation: do not skip it on CPU
        kwargs["compile_config"] = config
    for key in (
        "num_assistant_tokens",
        "num_assistant_tokens_schedule",
        "assistant_confidence_threshold",
        "prompt_lookup_num_tokens",
        "max_matching_ngram_size",
        "assistant_early_exit",
    ):
        if getattr(section, key) is not None:
            kwargs[key] = getattr(section, key)
    if section.use_mtp:
        kwargs["use_mtp"] = True
    if section.output_scores:
        kwargs["output_scores"] = True
    if section.output_logits:
        kwargs["output_logits"] = True
    if section.output_scores or section.output_logits:
        kwargs["return_dict_in_generate"] = True
    kwargs.update(section.extra.generate)
    return kwargs, notes


def tensorise(batches: list[list[list[int]]], pad_id: int, device: Any) -> list[tuple[Any, Any]]:
    """Left-padded ``input_ids`` and ``attention_mask`` per batch, on ``device``."""
    import torch

    out = []
    for batch in batches:
        width = max(len(p) for p in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, prompt in enumerate(batch):
            if prompt:
                ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
                mask[row, width - len(prompt) :] = 1
        out.append((ids.to(device), mask.to(device)))
    return out


def new_token_counts(sequences: Any, input_width: int, eos_ids: list[int]) -> list[int]:
    """Tokens each row really generated: up to and including its first EOS, else all new ones."""
    import torch

    new = sequences[:, input_width:]
    width = new.shape[1]
    if not eos_ids or width == 0:
        return [width] * new.shape[0]
    is_eos = torch.isin(new, torch.tensor(eos_ids, device=new.device))
    first = is_eos.int().argmax(dim=1)
    counts = torch.where(is_eos.any(dim=1), first + 1, torch.full_like(first, width))
    return [int(c) for c in counts.tolist()]


@dataclass
class LoopRecord:
    """Raw output of :func:`generate_loop`."""

    duration_s: float
    batch_latencies_s: list[float]
    sequences: list[Any]
    ttft_s: list[float] = field(default_factory=list)
    itl_s: list[float] = field(default_factory=list)
    #: perf_counter when each batch's ``generate`` was called
    starts: list[float] = field(default_factory=list)


def generate_loop(
    generate: Any, inputs: list[tuple[Any, Any]], kwargs: dict[str, Any], *, sync: Any = None, streamer: Any = None
) -> LoopRecord:
    """The measured window: one ``generate`` per batch, a timer around each (synchronised on CUDA)."""
    latencies: list[float] = []
    starts: list[float] = []
    sequences: list[Any] = []
    ttft: list[float] = []
    itl: list[float] = []
    if streamer is not None:
        kwargs = {**kwargs, "streamer": streamer}
    if sync is not None:
        sync()
    start = perf_counter()
    for ids, mask in inputs:
        if streamer is not None:
            streamer.reset()
        began = perf_counter()
        starts.append(began)
        out = generate(input_ids=ids, attention_mask=mask, **kwargs)
        if sync is not None:
            sync()
        latencies.append(perf_counter() - began)
        sequences.append(getattr(out, "sequences", out))
        if streamer is not None:
            first, gaps = streamer.latencies(began)
            if first is not None:
                ttft.append(first)
            itl.extend(gaps)
    duration = perf_counter() - start
    return LoopRecord(duration, latencies, sequences, ttft, itl, starts)
