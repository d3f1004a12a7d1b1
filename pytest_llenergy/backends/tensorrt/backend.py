"""The TensorRT-LLM backend: ``TensorrtBackend.load(experiment) -> TensorrtSession`` on the `LLM` API.

Importing this module is cheap: tensorrt_llm loads inside ``load``. The backend drives the
TensorRT-engine path of TensorRT-LLM's `LLM` API (``tensorrt_llm._tensorrt_engine.LLM`` where
it exists, i.e. TensorRT-LLM >= 1.0 whose plain ``LLM`` is the PyTorch flow; ``tensorrt_llm.LLM``
before). Built engines are cached on disk, one folder per key (a hash of the build settings, the
model, the GPU architecture and the TensorRT-LLM version; :mod:`.tensorrt_args`), and loaded from
there next time unless ``force_rebuild``. The TensorRT-LLM objects of a plan (build and runtime
configs, the `LLM` class, `SamplingParams`) come from :mod:`.tensorrt_objects` (its public names
stay importable from here).

Not run on hardware here: no TensorRT-LLM wheel installs on these machines. The tests drive it
against a fake ``tensorrt_llm`` (tests/fakes/fake_tensorrt_llm) that records every call.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from pytest_llenergy.backends.base import BackendError, Footprint, GenerationStats, Workload
from pytest_llenergy.backends.jsonable import jsonable
from pytest_llenergy.backends.session import (
    EngineBackend,
    EngineSession,
    OutputTally,
    load_key,
    random_weights,
)
from pytest_llenergy.backends.tensorrt.args import engine_key, plan, sampling
from pytest_llenergy.backends.tensorrt.footprint import tensorrt_footprint
from pytest_llenergy.backends.tensorrt.objects import SEARCH_MODULES as SEARCH_MODULES
from pytest_llenergy.backends.tensorrt.objects import accepts as accepts
from pytest_llenergy.backends.tensorrt.objects import (
    build_objects,
    llm_class,
    runtime_objects,
    sampling_params,
)
from pytest_llenergy.backends.tensorrt.objects import find_class as find_class
from pytest_llenergy.backends.tensorrt.phases import timeline
from pytest_llenergy.config.tensorrt_section import TensorrtConfig

if TYPE_CHECKING:
    from pytest_llenergy.config.experiment import ExperimentConfig, WorkloadConfig

ENGINE_MARKER = "lem-engine.json"
INSTALL_HINT = (
    "tensorrt_llm is not installed (NVIDIA's wheel: pip install tensorrt-llm --extra-index-url "
    "https://pypi.nvidia.com; PyPI itself holds only a placeholder)"
)


def gpu_architecture() -> str | None:
    """``sm90-NVIDIA H200``-style label of GPU 0, or None when no CUDA GPU is visible."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return f"sm{major}{minor}-{torch.cuda.get_device_name(0)}"




def default_engine_dir() -> Path:
    from pytest_llenergy.backends.checkpoint import cache_root

    return cache_root() / "tensorrt-engines"


def _version() -> str:
    import tensorrt_llm

    return str(getattr(tensorrt_llm, "__version__", "unknown"))


class TensorrtSession(EngineSession[TensorrtConfig]):
    """A TensorRT-LLM engine (built or loaded from the cache), ready to prepare and run workloads."""

    def __init__(self, experiment: ExperimentConfig) -> None:
        super().__init__(experiment)
        started = perf_counter()
        spec = self.spec
        version = _version()
        gpu = gpu_architecture() or "unknown-gpu"
        self.plan = plan(experiment)
        source: dict[str, Any]
        if self.random:
            from pytest_llenergy.backends.checkpoint import random_checkpoint, random_model_config

            config, _ = random_model_config(spec.name)
            self._config = config.to_dict()
            folder, source = random_checkpoint(spec.name, experiment.precision, experiment.workload.seed)
            model_path = str(folder)
            identity = {"random": spec.name, "checkpoint_key": source["checkpoint_key"]}
        else:
            if spec.gguf_file is not None:
                raise BackendError("model.gguf_file: TensorRT-LLM does not load GGUF checkpoints")
            self._config = {}
            model_path = spec.name
            identity = {"name": spec.name, "revision": spec.revision}
            source = {"model_source": spec.name}
        key, keyed = engine_key(self.plan.build_payload(), identity, gpu, version)
        root = Path(self.section.engine_cache_dir).expanduser() if self.section.engine_cache_dir else default_engine_dir()
        self.engine_dir = root / key
        llm_cls, llm_path = llm_class()
        runtime = runtime_objects(self.plan)
        revision = {"revision": spec.revision} if spec.revision and not self.random else {}
        cached = (self.engine_dir / ENGINE_MARKER).is_file()
        build_time = None
        try:
            if cached and not self.section.force_rebuild:
                status = "hit"
                self.llm = llm_cls(model=str(self.engine_dir), tokenizer=model_path, **runtime)
                meta = json.loads((self.engine_dir / ENGINE_MARKER).read_text())
                build_time = meta.get("build_time_s")
            else:
                status = "rebuilt (force_rebuild)" if cached else "built"
                build = build_objects(self.plan)
                t0 = perf_counter()
                self.llm = llm_cls(model=model_path, **revision, **build, **runtime)
                build_time = perf_counter() - t0
                self._save_engine(keyed, build_time, version)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001 - TensorRT-LLM raises many types; keep the message
            raise BackendError(f"TensorRT-LLM could not build or load the engine for {spec.name!r}: "
                               f"{type(exc).__name__}: {exc}") from exc
        self.load_time_s = perf_counter() - started
        self.engine_info: dict[str, Any] = {
            "backend": "tensorrt",
            "tensorrt_llm": version,
            "llm_class": llm_path,
            "python": sys.version.split()[0],
            "gpu_architecture": gpu,
            "model": spec.name,
            "weights": spec.weights,
            **source,
            "engine_dir": str(self.engine_dir),
            "engine_key": key,
            "engine_cache": status,
            "engine_build_time_s": build_time,
            "plan": self.plan.describe(),
            "llm_runtime_kwargs": jsonable(runtime),
            "notes": list(self.plan.notes),
        }

    def _save_engine(self, keyed: dict[str, Any], build_time: float, version: str) -> None:
        """Save the engine just built into the cache (atomically: a temporary sibling renamed into place)."""
        self.engine_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.engine_dir.name}-", dir=self.engine_dir.parent))
        try:
            self.llm.save(str(staging))
            (staging / ENGINE_MARKER).write_text(json.dumps(
                {"key": keyed, "build_time_s": build_time, "built_at": time.time(), "tensorrt_llm": version}, indent=2,
                default=str,
            ))
            if self.engine_dir.exists():
                shutil.rmtree(self.engine_dir)
            os.replace(staging, self.engine_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # --- tokens -----------------------------------------------------------------------------------------
    def _model_tokenizer(self) -> Any:
        tok = getattr(self.llm, "tokenizer", None)
        tok = getattr(tok, "tokenizer", tok)  # TensorRT-LLM wraps the HF tokenizer
        if tok is None:
            raise BackendError(f"no tokenizer for {self.spec.name!r}")
        return tok

    def _token_space(self) -> tuple[int, list[int]]:
        if self.random:
            specials = {int(self._config[k]) for k in ("bos_token_id", "eos_token_id", "pad_token_id")
                        if self._config.get(k) is not None}
            return int(self._config["vocab_size"]), sorted(specials)
        tok = self.tokenizer
        return len(tok), sorted(int(i) for i in tok.all_special_ids)

    # --- protocol ------------------------------------------------------------------------------------------
    def prepare(self, workload: WorkloadConfig, base_dir: str | Path | None = None) -> Workload:
        self._check_open()
        if workload.streaming and self.section.beam_width not in (None, 1):
            raise BackendError("streaming does not work with beam search (tensorrt.beam_width > 1)")
        prepared = self.build_prompts(workload, base_dir)
        self._sampling(workload.output_tokens, workload.seed)
        self.engine_info["sampling_kwargs"] = jsonable(self._sampling_records[(workload.output_tokens, workload.seed)])
        return prepared

    def _sampling(self, output_tokens: int, seed: int | None) -> Any:
        def keywords() -> dict[str, Any]:
            kwargs, notes = sampling(self.experiment, output_tokens, seed)
            self.plan.notes.extend(n for n in notes if n not in self.plan.notes)
            return kwargs

        return self._sampling_for(output_tokens, seed, keywords, sampling_params)

    def run(self, workload: Workload) -> GenerationStats:
        self._check_open()
        params = self._sampling(workload.output_tokens, workload.seed)
        if workload.streaming:
            return self._run_streaming(workload, params)
        latencies: list[float] = []
        outputs: list[Any] = []
        started = perf_counter()
        for batch in workload.batches:
            t0 = perf_counter()
            outputs.extend(self.llm.generate([list(p) for p in batch], params))
            latencies.append(perf_counter() - t0)
        duration = perf_counter() - started
        return self._stats(workload, outputs, duration, latencies, None, None)

    def _run_streaming(self, workload: Workload, params: Any) -> GenerationStats:
        """One request at a time through ``generate_async(streaming=True)``: a timestamp per response chunk."""
        latencies: list[float] = []
        outputs: list[Any] = []
        ttfts: list[float] = []
        itls: list[float] = []
        started = perf_counter()
        for batch in workload.batches:
            for prompt in batch:
                t0 = perf_counter()
                seen, last_time, final = 0, None, None
                for chunk in self.llm.generate_async(list(prompt), params, streaming=True):
                    now = perf_counter()
                    count = len(chunk.outputs[0].token_ids)
                    new = count - seen
                    if new > 0:
                        if last_time is None:
                            ttfts.append(now - t0)
                        else:
                            itls.extend([(now - last_time) / new] * new)
                        last_time, seen = now, count
                    final = chunk
                latencies.append(perf_counter() - t0)
                outputs.append(final)
        duration = perf_counter() - started
        return self._stats(workload, outputs, duration, latencies, ttfts, itls)

    def _stats(self, workload: Workload, outputs: list[Any], duration: float, latencies: list[float],
               ttfts: list[float] | None, itls: list[float] | None) -> GenerationStats:
        tally = OutputTally(workload.output_tokens, self.keep_output_ids)
        for index, out in enumerate(outputs):
            if out is None:
                tally.short.append((index, 0))
            else:
                tally.add(index, out, [out.outputs[0]])  # beam search: the best beam
        messages = list(self.plan.notes)
        if (line := tally.short_line(len(outputs), "requests")) is not None:
            messages.append(line)
        if tally.input_tokens != workload.input_tokens:
            messages.append(f"TensorRT-LLM processed {tally.input_tokens} prompt tokens; the workload holds {workload.input_tokens}")
        phase_timeline = timeline(outputs, max((len(b) for b in workload.batches), default=None))
        if phase_timeline is None:
            messages.append("TensorRT-LLM reported no per-request timing (request_perf_metrics): no prefill/decode split")
        return GenerationStats(
            timeline=phase_timeline,
            input_tokens=tally.input_tokens,
            output_tokens=tally.output_tokens,
            num_prompts=workload.num_prompts,
            duration_s=duration,
            batch_latencies_s=latencies,
            latency_mode="streaming" if ttfts is not None else "per_batch",
            ttft_s=ttfts or None,
            itl_s=itls or None,
            peak_memory_bytes=None,
            warnings=messages,
            output_token_ids=tally.kept if self.keep_output_ids else None,
        )

    def probe(self, workload: Workload, new_tokens: int) -> None:
        """A short generate on the real first batch: ``new_tokens`` per request."""
        self.run(workload.probe(new_tokens))

    def footprint(self) -> Footprint:
        return tensorrt_footprint(self.experiment) or Footprint(0, "cuda", "unknown")

    def close(self) -> None:
        llm = self._detach()
        if llm is None:
            return
        shutdown = getattr(llm, "shutdown", None)
        if callable(shutdown):
            try:
                shutdown()
            except Exception:  # noqa: BLE001 - closing must not raise
                pass
        del llm
        gc.collect()


class TensorrtBackend(EngineBackend["TensorrtSession"]):
    """NVIDIA TensorRT-LLM (needs an NVIDIA GPU and NVIDIA's wheel)."""

    name = "tensorrt"
    module = "tensorrt_llm"
    install_hint = INSTALL_HINT
    footprint_of = tensorrt_footprint

    def _usable(self) -> tuple[bool, str]:
        if gpu_architecture() is None:
            return False, "TensorRT-LLM builds and runs engines on an NVIDIA GPU; no CUDA GPU is visible"
        return True, ""

    def load_key(self, experiment: ExperimentConfig) -> str:
        """Equal for experiments that can share an engine: everything but the workload (its seed counts for
        random weights), since the session applies its own experiment's sampling settings."""
        return load_key(experiment, weights_seed=experiment.workload.seed if random_weights(experiment) else None)

    def _open(self, experiment: ExperimentConfig) -> TensorrtSession:
        return TensorrtSession(experiment)
