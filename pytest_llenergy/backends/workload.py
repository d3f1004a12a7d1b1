"""Workloads: prompts (synthetic, builtin, or from a file), cycled, ordered and batched.

No torch and no pydantic at import: turning token ids into tensors is the backend's job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llenergy.backends.datasets import dataset_texts
from pytest_llenergy.backends.errors import BackendError, PromptSourceError

if TYPE_CHECKING:
    from pytest_llenergy.backends.base import Workload
    from pytest_llenergy.config.experiment import WorkloadConfig

#: ``encode(texts, max_tokens)`` -> token ids per text, each at most ``max_tokens`` long
Encoder = Callable[[list[str], int], list[list[int]]]


@lru_cache(maxsize=1)
def _builtin() -> tuple[str, ...]:
    text = (resources.files("pytest_llenergy.backends") / "data" / "prompts.jsonl").read_text(encoding="utf-8")
    return tuple(_parse_jsonl(text.splitlines(), "builtin prompts.jsonl"))


def builtin_texts() -> list[str]:
    """The shipped prompt set (200 prompts of varied length and topic), in file order."""
    return list(_builtin())


def _parse_jsonl(lines: Sequence[str], name: str) -> list[str]:
    texts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise PromptSourceError(f"{name}:{number}: not valid JSON ({exc.args[0] if exc.args else exc})") from None
        if not isinstance(record, dict):
            raise PromptSourceError(f"{name}:{number}: expected an object with a `text` or `prompt` field")
        key = "text" if "text" in record else "prompt" if "prompt" in record else None
        if key is None:
            raise PromptSourceError(f"{name}:{number}: no `text` or `prompt` field (keys: {', '.join(record) or 'none'})")
        value = record[key]
        if not isinstance(value, str):
            raise PromptSourceError(f"{name}:{number}: `{key}` must be a string, not {type(value).__name__}")
        if not value.strip():
            raise PromptSourceError(f"{name}:{number}: `{key}` is empty")
        texts.append(value)
    return texts


def read_prompt_file(path: str | Path, base_dir: str | Path | None = None) -> list[str]:
    """Prompts from a ``.txt`` (one per non-blank line) or ``.jsonl`` (``text`` or ``prompt``) file."""
    path = Path(path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.suffix not in (".txt", ".jsonl"):
        raise PromptSourceError(f"{path}: prompt files are .txt (one per line) or .jsonl, not {path.suffix or 'no suffix'!r}")
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptSourceError(f"{path}: prompt file not found") from None
    except UnicodeDecodeError as exc:
        raise PromptSourceError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PromptSourceError(f"{path}: cannot read ({exc.strerror or exc})") from None
    lines = raw.splitlines()
    if path.suffix == ".jsonl":
        texts = _parse_jsonl(lines, str(path))
    else:
        texts = [line for line in lines if line.strip()]
    if not texts:
        raise PromptSourceError(f"{path}: no prompts (the file is empty or blank)")
    return texts


def prompt_texts(source: Any, base_dir: str | Path | None = None) -> list[str]:
    """Texts for ``builtin``, a dataset source (``PromptDataset``) or a file source (``{file: path}``,
    an object with ``.file``, or a path)."""
    if source == "builtin":
        return builtin_texts()
    if hasattr(source, "dataset"):
        return dataset_texts(source, base_dir)
    if isinstance(source, dict) and "file" in source:
        return read_prompt_file(source["file"], base_dir)
    if hasattr(source, "file"):
        return read_prompt_file(source.file, base_dir)
    if isinstance(source, (str, Path)) and source != "synthetic":
        return read_prompt_file(source, base_dir)
    raise BackendError(f"not a text prompt source: {source!r}")


def synthetic_prompts(
    num_prompts: int, input_tokens: int, vocab_size: int, special_ids: Sequence[int], seed: int
) -> list[list[int]]:
    """``num_prompts`` prompts of exactly ``input_tokens`` random ids in ``[0, vocab_size)``, no special ids."""
    import numpy as np

    specials = np.asarray(sorted({int(i) for i in special_ids if 0 <= int(i) < vocab_size}), dtype=np.int64)
    allowed = np.setdiff1d(np.arange(vocab_size, dtype=np.int64), specials, assume_unique=True)
    if allowed.size == 0:
        raise BackendError(f"no ordinary token ids in a vocabulary of {vocab_size}")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, allowed.size, size=(num_prompts, input_tokens))
    return allowed[picks].tolist()


def cycled(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` items: the first ``count``, or the set repeated in order when it is shorter."""
    if not items:
        raise BackendError("no prompts to cycle through")
    return [items[i % len(items)] for i in range(count)]


def order_and_batch(
    prompts: list[list[int]], batch_size: int, strategy: str = "static", texts: list[str] | None = None
) -> tuple[list[list[list[int]]], list[str] | None, list[int]]:
    """Batches in run order, the texts in that order, and the original index of each prompt.

    ``static`` keeps prompt order; ``sorted`` sorts by token length, longest first (stable), so
    prompts of similar length share a batch and padding shrinks.
    """
    order = list(range(len(prompts)))
    if strategy == "sorted":
        order.sort(key=lambda i: -len(prompts[i]))
    elif strategy != "static":
        raise BackendError(f"unknown batching strategy {strategy!r} (static or sorted)")
    ordered = [prompts[i] for i in order]
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    return batches, ([texts[i] for i in order] if texts is not None else None), order


def build_workload(
    config: WorkloadConfig,
    *,
    vocab_size: int,
    special_ids: Sequence[int],
    encode: Encoder | None = None,
    batching_strategy: str = "static",
    base_dir: str | Path | None = None,
) -> Workload:
    """A ready workload for ``config``. Text sources need ``encode``; synthetic ones do not."""
    from pytest_llenergy.backends.base import Workload

    texts: list[str] | None = None
    if config.prompts == "synthetic":
        prompts = synthetic_prompts(config.num_prompts, config.input_tokens, vocab_size, special_ids, config.seed)
    else:
        if encode is None:
            raise BackendError("text prompts need a tokenizer, and this session has none")
        source_texts = prompt_texts(config.prompts, base_dir)
        encoded = encode(source_texts, config.input_tokens)
        empty = [i for i, ids in enumerate(encoded) if not ids]
        if empty:
            raise PromptSourceError(f"prompt {empty[0] + 1} encodes to no tokens")
        texts = cycled(source_texts, config.num_prompts)
        prompts = [list(ids) for ids in cycled(encoded, config.num_prompts)]
    batches, texts, _ = order_and_batch(prompts, config.batch_size, batching_strategy, texts)
    return Workload(
        batches=batches, output_tokens=config.output_tokens, streaming=config.streaming, texts=texts, seed=config.seed
    )
