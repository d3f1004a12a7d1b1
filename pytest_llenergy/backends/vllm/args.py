"""What an experiment asks of vLLM: the exact `vllm.LLM(...)` and `SamplingParams(...)` keywords.

Pure mapping (no vllm import): the backend builds the engine from these dicts, the result records
them, and the tests check every typed parameter lands here and then in vLLM's own calls.
"""

from __future__ import annotations

from typing import Any

from pytest_llenergy.backends.errors import BackendError
from pytest_llenergy.backends.session import sampling_settings

#: vLLM spells precisions like transformers
DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}
#: vLLM's default `max_logprobs` (LLM(...) rejects requests asking for more unless raised)
DEFAULT_MAX_LOGPROBS = 20


def engine_seed(experiment: Any) -> int:
    section = experiment.vllm
    return section.seed if section.seed is not None else experiment.workload.seed


def engine_kwargs(experiment: Any, model: str, tokenizer: str | None = None) -> dict[str, Any]:
    """`vllm.LLM` keywords for ``experiment`` loading ``model`` (a hub id or a checkpoint directory)."""
    section = experiment.vllm
    kwargs: dict[str, Any] = {"model": model, "dtype": DTYPES[experiment.precision], "seed": engine_seed(experiment)}
    if tokenizer is not None:
        kwargs["tokenizer"] = tokenizer
    spec = experiment.model
    if spec is not None and spec.weights == "pretrained":
        if spec.revision is not None:
            kwargs["revision"] = spec.revision
        if spec.gguf_file is not None:
            raise BackendError(
                "model.gguf_file: vLLM loads a GGUF file given as the model path; set model.name to the .gguf file"
            )
    kwargs.update(section.engine_fields())
    wanted = max(section.logprobs or 0, section.prompt_logprobs or 0)
    if wanted > DEFAULT_MAX_LOGPROBS:
        kwargs["max_logprobs"] = wanted
    kwargs["disable_log_stats"] = not section.request_metrics
    extra = dict(section.extra.engine)
    nested = extra.pop("compilation_config", None)
    if nested is not None:
        if isinstance(nested, dict):
            kwargs["compilation_config"] = {**nested, **kwargs.get("compilation_config", {})}
        else:  # an int level or another form vLLM accepts: verbatim (typed cudagraph fields are then unset)
            kwargs["compilation_config"] = nested
    kwargs.update(extra)
    return kwargs


def sampling_kwargs(experiment: Any, output_tokens: int, seed: int | None) -> tuple[dict[str, Any], list[str]]:
    """`SamplingParams` keywords (exactly ``output_tokens`` new tokens, EOS ignored) and advisory notes."""
    section = experiment.vllm
    decoder = experiment.decoder.resolved()
    notes: list[str] = []
    if decoder.get("no_repeat_ngram_size"):
        raise BackendError(
            "decoder.no_repeat_ngram_size has no vLLM equivalent (it would be dropped silently); unset it for vllm"
        )
    kwargs: dict[str, Any] = {"max_tokens": output_tokens, "min_tokens": output_tokens, "ignore_eos": True}
    do_sample = bool(decoder.get("do_sample"))
    if do_sample:
        kwargs.update(sampling_settings(decoder, seed))
    else:
        kwargs["temperature"] = 0.0
        explicit = experiment.decoder.model_dump(exclude_none=True)
        for key in ("temperature", "top_k", "top_p", "min_p"):
            if key in explicit and not (key == "temperature" and explicit[key] == 0):
                notes.append(f"decoder.{key}={explicit[key]!r} has no effect with greedy decoding (not passed)")
    if decoder.get("repetition_penalty") is not None:
        kwargs["repetition_penalty"] = decoder["repetition_penalty"]
    if section.n != 1:
        kwargs["n"] = section.n
        if not do_sample:
            notes.append(f"vllm.n={section.n} with greedy decoding yields {section.n} identical completions")
    for key in ("logprobs", "prompt_logprobs"):
        if getattr(section, key) is not None:
            kwargs[key] = getattr(section, key)
    kwargs["detokenize"] = section.detokenize
    kwargs.update(section.extra.sampling)
    return kwargs, notes

