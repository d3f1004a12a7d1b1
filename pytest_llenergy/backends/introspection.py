"""The parameter surface, in one place: every typed parameter, and how well each backend covers the
engine parameters that change energy or throughput.

- :func:`parameters` walks the pydantic models (the backend sections in
  ``config.sections.BACKEND_SECTIONS`` plus the experiment's common fields) and yields one
  :class:`Parameter` per leaf: dotted path, type, default, constraints, description.
- :data:`CURATED` lists, per backend, the engine parameters that matter for energy or speed, each
  with a one-line reason and the typed path that covers it (``None``: only through ``extra``, or
  not at all). :func:`coverage` and :func:`format_coverage_report` summarise it.
- :func:`render_parameters_doc` is docs/parameters.md (``scripts/gen_parameters_doc.py``).

Only pydantic and our config models are imported: no torch, no engines.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pytest_llenergy.config.reference import constraints_text, type_name

#: the experiment's fields documented as common parameters (every backend reads them)
COMMON_FIELDS = ("model", "precision", "workload", "decoder")


@dataclass(frozen=True)
class Parameter:
    """One typed parameter: where it lives and what it accepts."""

    path: str
    type: str
    default: str
    constraints: str
    description: str
    section: str


@dataclass(frozen=True)
class CuratedParameter:
    """An engine parameter that changes energy or throughput, and what covers it here."""

    name: str
    api: str
    reason: str
    typed_path: str | None


# --- walking the models ---------------------------------------------------------------------------


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.get_default(call_default_factory=True, validated_data={})
        return "{}" if isinstance(value, BaseModel) else repr(value)
    if field.default is PydanticUndefined:
        return ""
    return "null" if field.default is None else repr(field.default)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin is not None and origin is not dict:
        return [m for a in typing.get_args(annotation) for m in _models_in(a)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _only_models(annotation: Any) -> bool:
    """True when every non-null member of the annotation is a pydantic model."""
    origin = typing.get_origin(annotation)
    union = typing.get_args(annotation) if origin in (typing.Union, types.UnionType) else (annotation,)
    members = [m for m in union if m is not type(None)]
    return all(isinstance(m, type) and issubclass(m, BaseModel) for m in members)


def walk(model: type[BaseModel], prefix: str, section: str) -> list[Parameter]:
    """Leaf parameters of ``model`` (depth first), paths prefixed with ``prefix``."""
    found: list[Parameter] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        nested = _models_in(field.annotation)
        if not nested or not _only_models(field.annotation):
            found.append(
                Parameter(
                    path=path,
                    type=type_name(field.annotation),
                    default=_default(field),
                    constraints=constraints_text(field),
                    description=" ".join((field.description or "").split()),
                    section=section,
                )
            )
        for sub in nested:
            found.extend(walk(sub, path, section))
    return found


def parameters(section: str | None = None) -> list[Parameter]:
    """Every typed parameter: ``common`` ones first, then each backend section's (or only ``section``)."""
    from pytest_llenergy.config.experiment import ExperimentConfig
    from pytest_llenergy.config.sections import BACKEND_SECTIONS

    out: list[Parameter] = []
    if section in (None, "common"):
        for name in COMMON_FIELDS:
            field = ExperimentConfig.model_fields[name]
            nested = _models_in(field.annotation)
            if nested:
                for model in nested:
                    out.extend(walk(model, name, "common"))
            else:
                out.extend(walk(_single_field_model(name, field), "", "common"))
    for backend, model in BACKEND_SECTIONS.items():
        if section in (None, backend):
            out.extend(walk(model, backend, backend))
    return out


def _single_field_model(name: str, field: FieldInfo) -> type[BaseModel]:
    from pydantic import create_model

    fields: dict[str, Any] = {name: (field.annotation, field)}
    return create_model("Single", **fields)


# --- curated engine parameters ---------------------------------------------------------------------

_T = CuratedParameter

#: per backend: the engine parameters that change energy or throughput (another backend adds its own key)
CURATED: dict[str, tuple[CuratedParameter, ...]] = {
    "transformers": (
        # from_pretrained
        _T("dtype", "from_pretrained", "Weight and activation width: memory traffic per token and the tensor-core path.", "precision"),
        _T("attn_implementation", "from_pretrained", "Attention kernel (sdpa, eager, flash): memory traffic and fusion of attention.", "transformers.attn_implementation"),
        _T("device_map", "from_pretrained", "Placement; spreading layers over devices adds transfers, CPU/disk offload dominates time.", "transformers.device_map"),
        _T("max_memory", "from_pretrained", "Caps per device: decides how much of the model spills to slower devices.", "transformers.max_memory"),
        _T("offload_folder", "from_pretrained", "Disk offload: weights are streamed from disk on every forward.", "transformers.offload_folder"),
        _T("quantization_config.load_in_4bit", "from_pretrained", "4-bit weights: a quarter of the weight traffic, plus dequantisation compute.", "transformers.quantization.load_in_4bit"),
        _T("quantization_config.load_in_8bit", "from_pretrained", "LLM.int8 with outlier decomposition: less memory, often slower than 16-bit.", "transformers.quantization.load_in_8bit"),
        _T("quantization_config.bnb_4bit_compute_dtype", "from_pretrained", "Dtype of the matmuls after dequantisation (float32 is much slower).", "transformers.quantization.bnb_4bit_compute_dtype"),
        _T("quantization_config.bnb_4bit_quant_type", "from_pretrained", "nf4 or fp4 lookup kernels.", "transformers.quantization.bnb_4bit_quant_type"),
        _T("quantization_config.bnb_4bit_use_double_quant", "from_pretrained", "Extra dequantisation step in exchange for less memory.", "transformers.quantization.bnb_4bit_use_double_quant"),
        _T("quantization_config.llm_int8_threshold", "from_pretrained", "How many activations take the slow 16-bit outlier path in 8-bit matmuls.", "transformers.quantization.llm_int8_threshold"),
        _T("revision", "from_pretrained", "A different revision can change weights, config or architecture.", "model.revision"),
        _T("gguf_file", "from_pretrained", "GGUF checkpoints are dequantised at load: the running model differs from the file.", "model.gguf_file"),
        _T("use_kernels", "from_pretrained", "Swaps layers for optimised Hub kernels (fused norms, MLPs, attention).", "transformers.use_kernels"),
        _T("experts_implementation", "from_pretrained", "Mixture-of-experts dispatch kernel (grouped vs batched matmuls).", "transformers.experts_implementation"),
        _T("trust_remote_code", "from_pretrained", "Runs the repository's own modelling code instead of transformers'.", "transformers.trust_remote_code"),
        _T("low_cpu_mem_usage", "from_pretrained", "Load-phase memory and time (no effect in transformers >= 5).", "transformers.low_cpu_mem_usage"),
        _T("tp_plan / distributed_config", "from_pretrained", "Tensor parallelism over GPUs; needs one torchrun process per GPU, which the runner does not launch.", None),
        # torch around the model
        _T("torch.compile mode", "torch", "Kernel fusion; reduce-overhead adds CUDA graphs that cut launch overhead per token.", "transformers.torch_compile"),
        _T("torch.compile backend", "torch", "inductor generates fused kernels; other backends trade compile time for speed.", "transformers.torch_compile_backend"),
        _T("float32_matmul_precision", "torch", "Lets float32 matmuls use TF32 tensor cores (several times faster on Ampere+).", "transformers.float32_matmul_precision"),
        # generate: lengths, batches, streaming
        _T("max_new_tokens", "generate", "Output length: decode steps per request.", "workload.output_tokens"),
        _T("min_new_tokens", "generate", "Forces exact lengths (no early EOS), so token counts and energy per token compare.", "workload.output_tokens"),
        _T("batch size", "generate", "Requests per forward: the main lever between memory-bound and compute-bound decoding.", "workload.batch_size"),
        _T("prompt length", "generate", "Prefill cost and KV-cache size.", "workload.input_tokens"),
        _T("batch ordering / padding", "generate", "Sorting by length shrinks padding waste inside a batch.", "transformers.batching_strategy"),
        _T("streamer", "generate", "A per-token callback with a host synchronisation every step.", "workload.streaming"),
        # generate: decoding strategy
        _T("do_sample", "generate", "Sampling adds softmax, filtering and a random draw per step.", "decoder.do_sample"),
        _T("temperature", "generate", "Scales logits; with sampling it changes the token path (same length here).", "decoder.temperature"),
        _T("top_k", "generate", "Top-k selection over the vocabulary each step.", "decoder.top_k"),
        _T("top_p", "generate", "Sorts the whole vocabulary each step.", "decoder.top_p"),
        _T("min_p", "generate", "Probability filter over the vocabulary each step.", "decoder.min_p"),
        _T("repetition_penalty", "generate", "Gathers and rescales logits of every generated token each step.", "decoder.repetition_penalty"),
        _T("no_repeat_ngram_size", "generate", "Bans n-grams on the host every step: makes small-batch decoding host-bound.", "decoder.no_repeat_ngram_size"),
        _T("num_beams", "generate", "Beam width multiplies sequences, KV cache and compute.", "transformers.num_beams"),
        _T("length_penalty", "generate", "Changes which beams win and when beam search can stop.", "transformers.length_penalty"),
        _T("early_stopping", "generate", "When beam search stops.", "transformers.early_stopping"),
        _T("num_return_sequences", "generate", "Sequences per prompt: multiplies decode work like a larger batch.", "transformers.num_return_sequences"),
        _T("guidance_scale", "generate", "Classifier-free guidance runs an extra unconditional forward each step.", "transformers.guidance_scale"),
        # generate: cache and compilation
        _T("use_cache", "generate", "Without the KV cache every step recomputes the whole prefix.", "transformers.use_cache"),
        _T("cache_implementation", "generate", "Static caches allow compilation and CUDA graphs; offloaded caches move KV to the host.", "transformers.cache_implementation"),
        _T("max_cache_len", "generate", "Size of a static cache: memory and attention span per step.", "transformers.max_cache_len"),
        _T("cache_config (quantized KV cache)", "generate", "Quantised KV cache: less memory traffic, extra (de)quantisation.", "transformers.quantized_cache"),
        _T("prefill_chunk_size", "generate", "Chunked prefill: lower peak memory, more kernel launches.", "transformers.prefill_chunk_size"),
        _T("compile_config / disable_compile", "generate", "transformers compiles the decode step itself with a static cache on GPU unless disabled.", "transformers.torch_compile"),
        _T("continuous batching (paged cache, generate_batch)", "generate", "Schedules requests continuously instead of padded static batches.", None),
        # generate: speculative decoding
        _T("assistant_model", "generate", "Speculative decoding: a draft model proposes, the target verifies several tokens per forward.", "transformers.assistant_model"),
        _T("num_assistant_tokens", "generate", "Draft length: acceptance rate against wasted draft work.", "transformers.num_assistant_tokens"),
        _T("num_assistant_tokens_schedule", "generate", "Whether the draft length adapts to acceptance.", "transformers.num_assistant_tokens_schedule"),
        _T("assistant_confidence_threshold", "generate", "Stops drafting early when the assistant is unsure.", "transformers.assistant_confidence_threshold"),
        _T("prompt_lookup_num_tokens", "generate", "Prompt lookup decoding: drafts from n-grams of the prompt, no draft model.", "transformers.prompt_lookup_num_tokens"),
        _T("max_matching_ngram_size", "generate", "N-gram length prompt lookup matches: acceptance rate.", "transformers.max_matching_ngram_size"),
        _T("assistant_early_exit", "generate", "Self-speculation with the model's first layers as the draft.", "transformers.assistant_early_exit"),
        _T("use_mtp", "generate", "Self-speculation with multi-token-prediction heads.", "transformers.use_mtp"),
        # generate: outputs
        _T("output_scores", "generate", "Keeps a vocabulary-sized tensor per step: memory and copies grow with the vocabulary.", "transformers.output_scores"),
        _T("output_logits", "generate", "Keeps the raw logits of every step.", "transformers.output_logits"),
    ),
}

#: parameters looked at and left out of the curated list, with the reason (documentation only)
NOT_CURATED: dict[str, dict[str, str]] = {
    "transformers": {
        "typical_p, epsilon_cutoff, eta_cutoff, top_h": "logit filters like top_p, with the same per-step cost; output length is fixed here (extra.generate)",
        "stop_strings, max_time, eos handling": "would end generation early; lengths are fixed so counts stay exact",
        "bad_words_ids, sequence_bias, suppress_tokens, watermarking_config": "small per-step logit edits (extra.generate)",
        "diversity_penalty, num_beam_groups, penalty_alpha, dola_layers": "moved to Hub custom generation methods in transformers 5",
        "use_safetensors, variant, cache_dir, token, local_files_only": "where weights come from, not how inference runs (extra.load)",
        "offload_buffers, kernel_config, key_mapping": "fine-grained loading details (extra.load)",
    },
}


#: modules that add other backends' lists to CURATED / NOT_CURATED when imported
EXTENSION_MODULES = ("pytest_llenergy.backends.engine_params",)


def _load_extensions() -> None:
    """Import the modules that register more curated lists, so results never depend on import order."""
    import importlib

    for name in EXTENSION_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def curated(backend: str | None = None) -> dict[str, tuple[CuratedParameter, ...]]:
    """The curated lists (every backend, or one), extensions loaded."""
    _load_extensions()
    return dict(CURATED) if backend is None else {backend: CURATED[backend]}


def coverage(backend: str) -> tuple[int, int, list[CuratedParameter]]:
    """(typed, curated total, the curated parameters without a typed path) for ``backend``."""
    _load_extensions()
    try:
        curated = CURATED[backend]
    except KeyError:
        raise KeyError(f"no curated parameter list for backend {backend!r} (have: {', '.join(CURATED)})") from None
    missing = [p for p in curated if p.typed_path is None]
    return len(curated) - len(missing), len(curated), missing


def format_coverage_report(backend: str | None = None) -> str:
    """Plain-text coverage report for one backend, or for every backend with a curated list."""
    _load_extensions()
    names = [backend] if backend is not None else list(CURATED)
    lines: list[str] = []
    for name in names:
        typed, total, missing = coverage(name)
        lines.append(f"{name}: {typed}/{total} energy-relevant engine parameters typed ({100 * typed / total:.1f} %)")
        width = max(len(p.name) for p in CURATED[name])
        for param in CURATED[name]:
            target = param.typed_path or "-- not typed (extra or unsupported)"
            lines.append(f"  {param.name:<{width}}  {param.api:<15}  {target}")
        if missing:
            lines.append("  not typed:")
            lines.extend(f"    {p.name}: {p.reason}" for p in missing)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# --- docs/parameters.md --------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_parameters_doc() -> str:
    """docs/parameters.md: every typed parameter, then the curated coverage per backend."""
    from pytest_llenergy.config.sections import BACKEND_SECTIONS

    _load_extensions()
    out = [
        "# Parameters",
        "",
        "Generated by `python scripts/gen_parameters_doc.py` from the pydantic models and",
        "`pytest_llenergy/backends/introspection.py`; do not edit by hand (a test fails when it is stale).",
        "Paths are dotted as in `grid.shared` / `grid.backend_overrides`.",
        "",
    ]
    sections = ["common", *BACKEND_SECTIONS]
    for section in sections:
        params = parameters(section)
        title = "Common to every backend" if section == "common" else f"`{section}:` section"
        out += [f"## {title}", "", "| path | type | default | constraints | description |", "|---|---|---|---|---|"]
        for p in params:
            out.append(
                f"| `{p.path}` | `{_cell(p.type)}` | {_cell(p.default)} | {_cell(p.constraints)} | {_cell(p.description)} |"
            )
        out.append("")
    out += [
        "## Coverage of energy-relevant engine parameters",
        "",
        "Each backend's curated list of engine parameters that change energy or throughput, and the typed",
        "path that sets it. Untyped ones are reachable through the section's `extra` where the engine",
        "accepts them, or not supported.",
        "",
    ]
    for backend in CURATED:
        typed, total, _ = coverage(backend)
        out += [
            f"### {backend}: {typed}/{total} typed ({100 * typed / total:.1f} %)",
            "",
            "| engine parameter | API | typed path | why it matters |",
            "|---|---|---|---|",
        ]
        for c in CURATED[backend]:
            target = f"`{c.typed_path}`" if c.typed_path else "not typed"
            out.append(f"| {_cell(c.name)} | {c.api} | {target} | {_cell(c.reason)} |")
        out.append("")
        if NOT_CURATED.get(backend):
            out += ["Considered and left out:", ""]
            out += [f"- {_cell(k)}: {_cell(v)}" for k, v in NOT_CURATED[backend].items()]
            out.append("")
    return "\n".join(out).rstrip() + "\n"
