"""The backend protocol: ``Backend.load(experiment) -> Session``, ``Session.run(workload) -> GenerationStats``.

Backends are found through the ``pytest_llenergy.backends`` entry-point group, so a third party
can add one. Heavy engines are imported inside ``load``, never at module import.

Optional parts, used when present (the plugin falls back without them):

- ``Session.probe(workload, new_tokens)``: a cheap run of the real shapes (the first batch,
  ``new_tokens`` decode steps) that warmup times until it is stable; default: ``run(workload.probe(n))``.
- ``Session.footprint() -> Footprint``: memory the loaded session holds (parameters + cache +
  reservations), so several sessions can stay resident within a memory budget.
- ``Backend.estimate_footprint(experiment) -> Footprint | None``: the same before loading, so a
  resident session is evicted before a model that would not fit is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol, runtime_checkable

from pytest_llenergy.backends.errors import BackendError
from pytest_llenergy.config.experiment import ExperimentConfig, WorkloadConfig
from pytest_llenergy.config.registry import ENTRY_POINT_GROUP
from pytest_llenergy.config.timeline import PhaseTimeline

__all__ = ["Backend", "BackendError", "BackendNotFound", "Footprint", "GenerationStats", "Session", "Workload",
           "get_backend", "run_probe"]


@dataclass
class Workload:
    """Prepared prompts: token ids per prompt, grouped into batches in run order."""

    batches: list[list[list[int]]]
    output_tokens: int
    streaming: bool = False
    texts: list[str] | None = None
    #: seed for sampling during the run (the workload's seed); None leaves the RNG alone
    seed: int | None = None
    #: a backend's prepared inputs for these batches (e.g. padded tensors), built outside the measured window
    engine_inputs: Any = field(default=None, repr=False, compare=False)
    #: the workload's own ``arrivals`` (serving): a resident session serves experiments that differ in it
    arrivals: Any = field(default=None, repr=False, compare=False)

    @property
    def num_prompts(self) -> int:
        return sum(len(b) for b in self.batches)

    @property
    def input_tokens(self) -> int:
        return sum(len(p) for b in self.batches for p in b)

    def head(self, n_batches: int = 1) -> Workload:
        """The first ``n_batches`` batches (for warmup)."""
        return Workload(self.batches[:n_batches], self.output_tokens, self.streaming, None, self.seed)

    def probe(self, new_tokens: int) -> Workload:
        """The first batch with at most ``new_tokens`` new tokens: a cheap run of the real shapes."""
        return Workload(self.batches[:1], max(1, min(new_tokens, self.output_tokens)), False, None, self.seed)

    def warmup_runs(self) -> list[Workload]:
        """What a full warmup runs once at full length after its probes, so that nothing is new inside a
        measured window: the first batch of each distinct (rows, longest prompt), in run order (a shape's
        first run pays one-time costs: on an H200, +4-8 s per batch shape on eager decoding with the
        dynamic cache); a serving workload (``arrivals``) whole, on the serving path it is measured on."""
        if self.arrivals is not None:
            return [self]
        seen: dict[tuple[int, int], list[list[int]]] = {}
        for batch in self.batches:
            seen.setdefault((len(batch), max((len(p) for p in batch), default=0)), batch)
        return [Workload([batch], self.output_tokens, self.streaming, None, self.seed) for batch in seen.values()]

    @property
    def shape(self) -> tuple[Any, ...]:
        """(rows, longest prompt) per batch, output tokens, streaming and whether it is served (arrivals):
        equal shapes warm up alike."""
        batches = tuple((len(b), max((len(p) for p in b), default=0)) for b in self.batches)
        return batches, self.output_tokens, self.streaming, self.arrivals is not None


@dataclass(frozen=True)
class Footprint:
    """Memory a session holds (or will hold) on one kind of device: ``cuda`` or ``cpu``."""

    bytes: int
    device: str = "cpu"
    #: how the figure was obtained, e.g. "parameters + peak cache" or "gpu_memory_utilization 0.9 x 141 GiB"
    detail: str = ""


@dataclass
class GenerationStats:
    """What one ``Session.run`` produced and how long it took."""

    input_tokens: int
    output_tokens: int
    num_prompts: int
    duration_s: float
    batch_latencies_s: list[float] = field(default_factory=list)
    latency_mode: Literal["per_batch", "streaming", "engine_metrics"] = "per_batch"
    ttft_s: list[float] | None = None
    itl_s: list[float] | None = None
    peak_memory_bytes: int | None = None
    #: what peak_memory_bytes measures, e.g. "cuda_max_allocated" or "process_peak_rss"
    peak_memory_scope: str | None = None
    warnings: list[str] = field(default_factory=list)
    output_token_ids: list[list[int]] | None = None
    #: each request's prefill/decode boundaries as the engine stamped them (None: not reported)
    timeline: PhaseTimeline | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@runtime_checkable
class Session(Protocol):
    """A loaded model, ready to generate."""

    load_time_s: float
    engine_info: dict[str, Any]

    def prepare(self, workload: WorkloadConfig) -> Workload: ...

    def run(self, workload: Workload) -> GenerationStats: ...

    def close(self) -> None: ...

    # optional: def probe(self, workload: Workload, new_tokens: int) -> None
    # optional: def footprint(self) -> Footprint


class Backend(Protocol):
    """An inference engine."""

    name: str

    def available(self) -> tuple[bool, str]:
        """(True, "") when usable here, else (False, the reason)."""

    def load(self, experiment: ExperimentConfig) -> Session: ...

    def load_key(self, experiment: ExperimentConfig) -> str:
        """Equal for experiments that can share one loaded session."""

    # optional: def estimate_footprint(self, experiment: ExperimentConfig) -> Footprint | None


def run_probe(session: Any, workload: Workload, new_tokens: int) -> None:
    """The session's own ``probe`` when it has one, else ``run`` on the first batch, ``new_tokens`` long."""
    probe = getattr(session, "probe", None)
    if callable(probe):
        probe(workload, new_tokens)
    else:
        session.run(workload.probe(new_tokens))


class BackendNotFound(LookupError):
    pass


@cache
def get_backend(name: str) -> Backend:
    """The backend registered under ``name`` (entry point ``pytest_llenergy.backends``)."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()()
    builtin = {
        "transformers": "pytest_llenergy.backends.transformers.backend:TransformersBackend",
        "vllm": "pytest_llenergy.backends.vllm.backend:VllmBackend",
        "tensorrt": "pytest_llenergy.backends.tensorrt.backend:TensorrtBackend",
    }
    if name in builtin:
        module, _, attr = builtin[name].partition(":")
        import importlib

        try:
            return getattr(importlib.import_module(module), attr)()
        except (ImportError, AttributeError) as exc:
            raise BackendNotFound(f"backend {name!r} is not available: {exc}") from None
    raise BackendNotFound(f"no backend named {name!r} is registered")
