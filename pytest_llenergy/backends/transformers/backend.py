"""The transformers (PyTorch) backend: ``TransformersBackend.load(experiment) -> TransformersSession``.

Importing this module is cheap: torch and transformers load inside ``load``. What reaches the
engine is recorded in ``session.engine_info`` (``from_pretrained_kwargs``, ``generate_kwargs``)
so a result says exactly what ran.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from pytest_llenergy.backends.base import BackendError, Footprint, GenerationStats, Workload
from pytest_llenergy.backends.session import BaseSession, load_key, process_peak_rss, random_weights
from pytest_llenergy.backends.tokenizer import BOS_ID, EOS_ID, PAD_ID
from pytest_llenergy.config.transformers_section import TransformersConfig

if TYPE_CHECKING:
    from pytest_llenergy.config.experiment import ExperimentConfig, WorkloadConfig

MIN_TRANSFORMERS = (4, 45)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


class TransformersBackend:
    """Hugging Face transformers on PyTorch (CPU or CUDA)."""

    name = "transformers"

    def available(self) -> tuple[bool, str]:
        for module in ("torch", "transformers"):
            if find_spec(module) is None:
                return False, f"{module} is not installed (pip install 'pytest-llenergy[transformers]')"
        try:
            version = metadata.version("transformers")
        except metadata.PackageNotFoundError:
            return False, "transformers is importable but has no package metadata"
        if _version_tuple(version) < MIN_TRANSFORMERS:
            return False, f"transformers {version} is too old (need >= {'.'.join(map(str, MIN_TRANSFORMERS))})"
        return True, ""

    def load_key(self, experiment: ExperimentConfig) -> str:
        """Equal for experiments that can share a session: same model, weights (and seed when random),
        precision, transformers section and decoder; only the workload may differ.

        The session applies its own experiment's decoder and generate settings (the protocol gives
        ``prepare`` only the workload), so those are part of the key too.
        """
        return load_key(experiment, seed=experiment.workload.seed if random_weights(experiment) else None)

    def estimate_footprint(self, experiment: ExperimentConfig) -> Footprint | None:
        """Parameter bytes at the experiment's precision, from the model's config (meta device)."""
        from pytest_llenergy.backends.transformers.footprint import estimate_footprint

        return estimate_footprint(experiment)

    def load(self, experiment: ExperimentConfig) -> TransformersSession:
        ok, reason = self.available()
        if not ok:
            raise BackendError(reason)
        return TransformersSession(experiment)


class TransformersSession(BaseSession[TransformersConfig]):
    """A loaded model (plus assistant and tokenizer) ready to prepare and run workloads."""

    def __init__(self, experiment: ExperimentConfig) -> None:
        import torch
        import transformers

        from pytest_llenergy.backends.jsonable import jsonable
        from pytest_llenergy.backends.transformers.generate import (
            EngineWarnings,
            experiment_generate_kwargs,
        )
        from pytest_llenergy.backends.transformers.loading import load_model, plan_load

        super().__init__(experiment)
        self.model: Any = None
        self.assistant: Any = None
        self._matmul_precision: str | None = None
        started = perf_counter()
        random = self.random
        overrides = {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": PAD_ID} if random else None
        with EngineWarnings() as caught:
            kwargs, notes = experiment_generate_kwargs(experiment)  # settings errors before any loading
            plan = plan_load(experiment)
            self.model, source = load_model(plan, experiment.workload.seed, overrides)
            self._set_special_ids(random)
            assistant_info = self._load_assistant(plan) if self.section.assistant_model else None
            self._matmul_precision = plan.matmul_precision
        self.load_time_s = perf_counter() - started
        self.device = self.model.device
        self._sync = torch.cuda.synchronize if self.device.type == "cuda" else None
        self._cuda_devices = sorted({p.device for p in self.model.parameters() if p.device.type == "cuda"}, key=str)
        self._base_kwargs = {**kwargs, "pad_token_id": self.pad_id, "eos_token_id": self.eos_ids}
        recorded = jsonable(self._base_kwargs)
        if self.assistant is not None:
            self._base_kwargs["assistant_model"] = self.assistant
            recorded["assistant_model"] = self.section.assistant_model
        self._plain_greedy = (
            not kwargs.get("do_sample") and self.section.num_beams == 1 and not self.section.speculative
            and not self.section.extra.generate
        )
        self.load_warnings = [*plan.notes, *notes, *caught.messages]
        self.engine_info: dict[str, Any] = {
            "backend": "transformers",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": sys.version.split()[0],
            "model": plan.name,
            "weights": plan.weights,
            **source,
            "device": str(self.device),
            "cuda_devices": [str(d) for d in self._cuda_devices],
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "num_parameters": sum(p.numel() for p in self.model.parameters()),
            **plan.describe(),
            "generate_kwargs": recorded,
            "pad_token_id": self.pad_id,
            "eos_token_id": self.eos_ids,
            "assistant": assistant_info,
            "model_generation_defaults_ignored": self._ignored_defaults,
            "load_warnings": list(self.load_warnings),
        }

    # --- loading helpers ----------------------------------------------------------------------------
    def _set_special_ids(self, random: bool) -> None:
        """Decide pad/eos ids and replace the model's generation defaults with a neutral config."""
        from transformers import GenerationConfig

        original = self.model.generation_config
        config = self.model.config
        if random:
            eos: Any = EOS_ID
            pad: Any = PAD_ID
            bos: Any = BOS_ID
        else:
            eos = original.eos_token_id if original.eos_token_id is not None else config.eos_token_id
            bos = original.bos_token_id if original.bos_token_id is not None else config.bos_token_id
            pad = original.pad_token_id if original.pad_token_id is not None else getattr(config, "pad_token_id", None)
        self.eos_ids: list[int] = [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None]
        if pad is None:
            pad = self.eos_ids[0] if self.eos_ids else 0
        self.pad_id = int(pad)
        self.bos_id = None if bos is None else int(bos)
        diff = original.to_diff_dict() if not random and hasattr(original, "to_diff_dict") else {}
        bookkeeping = ("transformers_version", "bos_token_id", "eos_token_id", "pad_token_id", "_from_model_config")
        self._ignored_defaults = {k: v for k, v in diff.items() if k not in bookkeeping}
        self.model.generation_config = GenerationConfig(
            bos_token_id=self.bos_id, eos_token_id=self.eos_ids or None, pad_token_id=self.pad_id
        )

    def _load_assistant(self, plan: Any) -> dict[str, Any]:
        from pytest_llenergy.backends.transformers.loading import LoadPlan, load_model

        section = self.section
        assert section.assistant_model is not None  # called only when one is configured
        weights = section.assistant_weights or plan.weights
        keep = ("dtype", "attn_implementation", "trust_remote_code", "device_map")
        assistant_plan = LoadPlan(
            name=section.assistant_model,
            weights=weights,
            kwargs={k: v for k, v in plan.kwargs.items() if k in keep},
            device=plan.device,
            move_to=plan.move_to,
        )
        overrides = None
        if weights == "random":
            overrides = {
                "vocab_size": self.model.config.vocab_size,
                "bos_token_id": self.bos_id,
                "eos_token_id": self.eos_ids[0] if self.eos_ids else None,
                "pad_token_id": self.pad_id,
            }
        self.assistant, source = load_model(assistant_plan, self.experiment.workload.seed + 1, overrides)
        from transformers import GenerationConfig

        self.assistant.generation_config = GenerationConfig(
            bos_token_id=self.bos_id, eos_token_id=self.eos_ids or None, pad_token_id=self.pad_id
        )
        return {"model": section.assistant_model, "weights": weights, **source, **assistant_plan.describe()}

    # --- tokenizer ------------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        """The built-in BPE tokenizer for random weights, else the model's own (loaded on first use)."""
        if self._tokenizer is None:
            if self.random:
                from pytest_llenergy.backends.tokenizer import build_tokenizer

                self._tokenizer = build_tokenizer(self.model.config.vocab_size)
            else:
                from transformers import AutoTokenizer

                spec = self.spec
                kwargs: dict[str, Any] = {"trust_remote_code": self.section.trust_remote_code}
                if spec.revision:
                    kwargs["revision"] = spec.revision
                if spec.gguf_file:
                    kwargs["gguf_file"] = spec.gguf_file
                try:
                    self._tokenizer = AutoTokenizer.from_pretrained(spec.name, **kwargs)
                except (OSError, ValueError) as exc:
                    raise BackendError(f"no tokenizer for {spec.name!r}: {exc}") from exc
            self.engine_info["tokenizer"] = (
                f"built-in byte-level BPE, {len(self._tokenizer)} tokens" if self.random else self.spec.name
            )
        return self._tokenizer

    def _token_space(self) -> tuple[int, list[int]]:
        """(vocabulary size, special ids) for synthetic prompts."""
        vocab = int(self.model.config.vocab_size)
        specials = {self.pad_id, *self.eos_ids}
        if self.bos_id is not None:
            specials.add(self.bos_id)
        if self.random:
            return vocab, sorted(specials)
        try:
            tok = self.tokenizer
        except BackendError:
            return vocab, sorted(specials)
        specials.update(int(i) for i in tok.all_special_ids)
        return min(vocab, len(tok)), sorted(specials)

    # --- protocol -------------------------------------------------------------------------------------
    def prepare(self, workload: WorkloadConfig, base_dir: str | Path | None = None) -> Workload:
        """Prompts to token ids, ordered and batched, and padded tensors on the model's device.

        ``base_dir`` resolves a relative prompt file (default: the session's ``base_dir``, set by
        the plugin to the campaign file's folder, else the current directory).
        """
        from pytest_llenergy.backends.transformers.generate import tensorise

        self._check_workload(workload.batch_size, workload.streaming)
        prepared = self.build_prompts(workload, base_dir, self.section.batching_strategy)
        prepared.engine_inputs = tensorise(prepared.batches, self.pad_id, self.device)
        recorded = self.engine_info["generate_kwargs"]
        recorded.update(max_new_tokens=workload.output_tokens, min_new_tokens=workload.output_tokens)
        if workload.streaming:
            recorded["streamer"] = "TimingStreamer"
        else:
            recorded.pop("streamer", None)
        return prepared

    def _check_workload(self, batch_size: int, streaming: bool) -> None:
        if streaming and batch_size != 1:
            raise BackendError("streaming needs batch_size 1")
        if streaming and (self.section.num_beams > 1 or self.section.num_return_sequences > 1):
            raise BackendError("streaming needs one sequence per prompt (num_beams 1, num_return_sequences 1)")
        if self.section.speculative and batch_size != 1:
            raise BackendError("assisted / prompt-lookup generation needs batch_size 1 in transformers")

    def run(self, workload: Workload) -> GenerationStats:
        """Generate every batch of ``workload``; exact token counts, per-batch latencies, peak memory."""
        import torch

        from pytest_llenergy.backends.transformers.generate import (
            EngineWarnings,
            TimingStreamer,
            generate_loop,
            new_token_counts,
            tensorise,
        )
        from pytest_llenergy.backends.transformers.phases import (
            PhaseClock,
            build_timeline,
            with_phase_clock,
        )

        if self.model is None:
            raise BackendError("this session is closed")
        self._check_workload(max((len(b) for b in workload.batches), default=1), workload.streaming)
        inputs = workload.engine_inputs
        if inputs is None or len(inputs) != len(workload.batches) or (inputs and inputs[0][0].device != self.device):
            inputs = tensorise(workload.batches, self.pad_id, self.device)
        n = workload.output_tokens
        kwargs = {**self._base_kwargs, "max_new_tokens": n, "min_new_tokens": n}
        streamer = TimingStreamer(self._sync) if workload.streaming else None
        clock = PhaseClock(self._sync)
        kwargs = with_phase_clock(kwargs, clock)
        if workload.seed is not None:
            torch.manual_seed(workload.seed)
        for device in self._cuda_devices:
            torch.cuda.reset_peak_memory_stats(device)
        with EngineWarnings() as caught, self._own_matmul_precision():
            record = generate_loop(self.model.generate, inputs, kwargs, sync=self._sync, streamer=streamer)
        peak, scope = self._peak_memory()
        counts: list[int] = []
        kept: list[list[int]] = []
        for (ids, _), seq in zip(inputs, record.sequences):
            rows = new_token_counts(seq, ids.shape[1], self.eos_ids)
            counts.extend(rows)
            if self.keep_output_ids:
                new = seq[:, ids.shape[1] :].tolist()
                kept.extend(row[:c] for row, c in zip(new, rows))
        messages = [*self.load_warnings, *caught.messages]
        off = [i for i, c in enumerate(counts) if c != n]
        if off:
            problem = (
                f"{len(off)} of {len(counts)} sequences generated other than {n} tokens "
                f"(first: sequence {off[0]} with {counts[off[0]]})"
            )
            if self._plain_greedy:
                raise BackendError(f"greedy decoding with min_new_tokens = max_new_tokens must be exact: {problem}")
            messages.append(problem)
        return GenerationStats(
            input_tokens=workload.input_tokens,
            output_tokens=sum(counts),
            num_prompts=workload.num_prompts,
            duration_s=record.duration_s,
            batch_latencies_s=record.batch_latencies_s,
            latency_mode="streaming" if streamer is not None else "per_batch",
            ttft_s=record.ttft_s if streamer is not None else None,
            itl_s=record.itl_s if streamer is not None else None,
            peak_memory_bytes=peak,
            peak_memory_scope=scope,
            warnings=messages,
            output_token_ids=kept if self.keep_output_ids else None,
            timeline=build_timeline(clock, record.starts, record.batch_latencies_s, workload.batches, counts),
        )

    @contextmanager
    def _own_matmul_precision(self) -> Iterator[None]:
        """This experiment's ``float32_matmul_precision`` while it generates, the process's otherwise.

        The setting is process-global: set at load, it leaked into every resident session (on the
        H200 a ``high`` (TF32) experiment's first cycle used 43 % less energy than its later ones,
        which ran with the next-loaded session's ``highest``).
        """
        if self._matmul_precision is None:
            yield
            return
        import torch

        previous = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(self._matmul_precision)
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(previous)

    def probe(self, workload: Workload, new_tokens: int) -> None:
        """The first batch for ``new_tokens`` steps; a static cache is sized as for the full run,
        so a compiled decoding step (CUDA graphs) is the one the measured run reuses."""
        static = self.section.cache_implementation in ("static", "offloaded_static") and self.section.max_cache_len is None
        if not static or not workload.batches:
            self.run(workload.probe(new_tokens))
            return
        longest = max(len(p) for p in workload.batches[0])
        self._base_kwargs["max_cache_len"] = longest + workload.output_tokens
        try:
            self.run(workload.probe(new_tokens))
        finally:
            self._base_kwargs.pop("max_cache_len", None)

    def footprint(self) -> Footprint:
        """Parameters + buffers (model and assistant); on CUDA the last run's peak when larger."""
        from pytest_llenergy.backends.transformers.footprint import session_footprint

        if self.model is None:
            return Footprint(0, "cpu", "closed")
        return session_footprint(self.model, self.assistant, self._cuda_devices)

    def _peak_memory(self) -> tuple[int | None, str | None]:
        if self._cuda_devices:
            import torch

            return sum(torch.cuda.max_memory_allocated(d) for d in self._cuda_devices), "cuda_max_allocated"
        return process_peak_rss()

    def close(self) -> None:
        """Free the model and its memory; safe to call twice."""
        if self.model is None:
            return
        self.model = self.assistant = self._tokenizer = None
        self._base_kwargs = {}
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
