"""What every engine's session shares: the experiment, its model and section, prompts, and the load key.

The three built-in sessions (transformers, vLLM, TensorRT-LLM) derive from :class:`BaseSession`,
so a relative prompt file resolves the same way for all of them: from the ``base_dir`` the plugin
sets (the campaign file's folder), else from the current directory.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel

from pytest_llenergy.backends.errors import BackendError
from pytest_llenergy.backends.workload import build_workload

if TYPE_CHECKING:
    from pytest_llenergy.backends.base import Footprint, Workload
    from pytest_llenergy.config.experiment import ExperimentConfig, ModelSpec, WorkloadConfig

SectionT = TypeVar("SectionT", bound=BaseModel)
SessionT = TypeVar("SessionT")
IMPORT_PROBLEMS: dict[str, str] = {}  # module -> "" (imports) or why not; engines take seconds to import


def import_problem(module: str) -> str | None:
    """None when ``module`` imports here, else the reason (checked once per process)."""
    if module not in IMPORT_PROBLEMS:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure makes the backend unavailable, with the reason
            IMPORT_PROBLEMS[module] = f"import {module} failed: {type(exc).__name__}: {exc}"
        else:
            IMPORT_PROBLEMS[module] = ""
    return IMPORT_PROBLEMS[module] or None


def sampling_settings(decoder: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """Sampling keywords shared by vLLM and TensorRT-LLM when the decoder samples: temperature
    (1.0 unless set), top_k / top_p / min_p where set, and the seed."""
    temperature = decoder.get("temperature")
    if temperature == 0:
        raise BackendError("decoder: do_sample with temperature 0 is contradictory; use temperature > 0 or greedy")
    kwargs: dict[str, Any] = {"temperature": 1.0 if temperature is None else temperature}
    kwargs.update({key: decoder[key] for key in ("top_k", "top_p", "min_p") if decoder.get(key) is not None})
    if seed is not None:
        kwargs["seed"] = seed
    return kwargs


def process_peak_rss() -> tuple[int | None, str | None]:
    """This process's peak resident memory in bytes and what it measures; (None, None) off POSIX."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return None, None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak if sys.platform == "darwin" else peak * 1024), "process_peak_rss"


def load_key(experiment: ExperimentConfig, **extra: Any) -> str:
    """Equal for experiments that can share a loaded session: the model, precision, the engine's
    section and the decoder (a session applies its own experiment's settings), plus ``extra``."""
    section = experiment.section()
    payload = {
        "model": experiment.model.model_dump(mode="json") if experiment.model else None,
        "precision": experiment.precision,
        experiment.backend: section.model_dump(mode="json") if section is not None else None,
        "decoder": experiment.decoder.resolved(),
        **extra,
    }
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def random_weights(experiment: ExperimentConfig) -> bool:
    """Whether the experiment's model is built from its config with random weights."""
    return experiment.model is not None and experiment.model.weights == "random"


@dataclass
class OutputTally:
    """Token counts of an engine's request outputs (vLLM and TensorRT-LLM hand back the same shape: a
    request with ``prompt_token_ids`` and completions with ``token_ids``)."""

    expected: int
    keep_ids: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    #: (request index, tokens) of every completion with other than ``expected`` tokens
    short: list[tuple[int, int]] = field(default_factory=list)
    kept: list[list[int]] = field(default_factory=list)

    def add(self, index: int, out: Any, completions: Iterable[Any]) -> None:
        """Request ``index``: its prompt tokens, and each of ``completions`` (the ones this engine counts)."""
        prompt_ids = getattr(out, "prompt_token_ids", None)
        self.input_tokens += len(prompt_ids) if prompt_ids is not None else 0
        for completion in completions:
            count = len(completion.token_ids)
            self.output_tokens += count
            if count != self.expected:
                self.short.append((index, count))
            if self.keep_ids:
                self.kept.append(list(completion.token_ids))

    def short_line(self, total: int, unit: str) -> str | None:
        """How many of ``total`` ``unit`` generated other than the expected tokens (None: all did)."""
        if not self.short:
            return None
        return (f"{len(self.short)} of {total} {unit} generated other than {self.expected} tokens "
                f"(first: request {self.short[0][0]} with {self.short[0][1]})")


class BaseSession(Generic[SectionT]):
    """The experiment, its model (``spec``) and engine section, and prompt preparation."""

    #: keep generated token ids in GenerationStats.output_token_ids (tests, debugging)
    keep_output_ids: bool = False
    #: where relative prompt files resolve from (the plugin sets the campaign file's folder)
    base_dir: str | Path | None = None

    def __init__(self, experiment: ExperimentConfig) -> None:
        if experiment.model is None:
            raise BackendError("the experiment names no model")
        section = experiment.section()
        if section is None:
            raise BackendError(f"the experiment has no {experiment.backend} section")
        self.experiment = experiment
        self.spec: ModelSpec = experiment.model
        self.section = cast(SectionT, section)
        self.random = self.spec.weights == "random"
        self._tokenizer: Any = None
        self._config: dict[str, Any] = {}  # the random-weight model's config (vocab_size, special ids)

    @property
    def tokenizer(self) -> Any:
        """The built-in tokenizer for random weights (as saved with the checkpoint), else the model's."""
        if self._tokenizer is None:
            if self.random:
                from pytest_llenergy.backends.tokenizer import build_tokenizer

                self._tokenizer = build_tokenizer(int(self._config["vocab_size"]))
            else:
                self._tokenizer = self._model_tokenizer()
        return self._tokenizer

    def _model_tokenizer(self) -> Any:
        """The tokenizer of a named (not random-weight) model."""
        raise NotImplementedError

    def _token_space(self) -> tuple[int, list[int]]:
        """(vocabulary size, special token ids) of the token space synthetic prompts are drawn from."""
        raise NotImplementedError

    def build_prompts(self, workload: WorkloadConfig, base_dir: str | Path | None = None,
                      batching_strategy: str = "static") -> Workload:
        """Prompts to token ids, batched: synthetic ones in the engine's token space, text ones
        through its tokenizer; a relative prompt file resolves from ``base_dir``, else the
        session's ``base_dir``, else the current directory."""
        vocab, specials = self._token_space()
        encode = None
        if workload.prompts != "synthetic":
            tok = self.tokenizer

            def encode(texts: list[str], max_tokens: int) -> list[list[int]]:
                ids: list[list[int]] = tok(texts, add_special_tokens=True, truncation=True,
                                           max_length=max_tokens)["input_ids"]
                return ids

        return build_workload(workload, vocab_size=vocab, special_ids=specials, encode=encode,
                              batching_strategy=batching_strategy,
                              base_dir=base_dir if base_dir is not None else self.base_dir)


class EngineBackend(Generic[SessionT]):
    """What the engines that run in their own library share (vLLM, TensorRT-LLM): available when
    ``module`` is installed and imports (and :meth:`_usable`), ``load`` checks that and opens a
    session, and the footprint estimate comes from ``footprint_of`` (a plain function)."""

    name: ClassVar[str]
    #: the engine's import name, and what to say when it is not installed
    module: ClassVar[str]
    install_hint: ClassVar[str]
    footprint_of: ClassVar[Callable[[ExperimentConfig], Footprint | None]]

    def available(self) -> tuple[bool, str]:
        if find_spec(self.module) is None:
            return False, self.install_hint
        problem = import_problem(self.module)
        if problem:
            return False, problem
        return self._usable()

    def _usable(self) -> tuple[bool, str]:
        """Further conditions once the engine imports (a GPU, say); usable by default."""
        return True, ""

    def _open(self, experiment: ExperimentConfig) -> SessionT:
        raise NotImplementedError

    def estimate_footprint(self, experiment: ExperimentConfig) -> Footprint | None:
        return type(self).footprint_of(experiment)

    def load(self, experiment: ExperimentConfig) -> SessionT:
        ok, reason = self.available()
        if not ok:
            raise BackendError(reason)
        return self._open(experiment)


class EngineSession(BaseSession[SectionT]):
    """A session around one engine object (``llm``, None once closed) whose sampling parameters are
    built once per (output tokens, seed) and recorded as the keywords they were built from."""

    def __init__(self, experiment: ExperimentConfig) -> None:
        super().__init__(experiment)
        self.llm: Any = None
        self._sampling_cache: dict[tuple[int, int | None], Any] = {}
        self._sampling_records: dict[tuple[int, int | None], dict[str, Any]] = {}

    def _check_open(self) -> None:
        if self.llm is None:
            raise BackendError("this session is closed")

    def _sampling_for(self, output_tokens: int, seed: int | None, keywords: Callable[[], dict[str, Any]],
                      make: Callable[[dict[str, Any]], Any]) -> Any:
        """The engine's sampling parameters for (``output_tokens``, ``seed``), built the first time
        (``make(keywords())``, the keywords recorded) and remembered after."""
        key = (output_tokens, seed)
        if key not in self._sampling_cache:
            kwargs = self._sampling_records[key] = keywords()
            self._sampling_cache[key] = make(kwargs)
        return self._sampling_cache[key]

    def _detach(self) -> Any:
        """Take the engine out of the session (None when already closed) and forget its sampling parameters."""
        llm, self.llm = self.llm, None
        self._sampling_cache.clear()
        return llm
