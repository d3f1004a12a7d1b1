"""Loading transformers models: the effective ``from_pretrained`` keywords, random weights, placement.

No pydantic here (the experiment is read by attribute), and torch/transformers are imported inside
the functions, so ``scripts/validate_h200_backend.py`` can use :func:`build_random_model` on a box
without pydantic.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from pytest_llenergy.backends.architectures import resolve_architecture
from pytest_llenergy.backends.errors import BackendError
from pytest_llenergy.backends.jsonable import jsonable

SPREADING_DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
#: keywords transformers 5 accepts and then drops without a word: never pass them silently
DROPPED_BY_TRANSFORMERS_5 = ("mirror", "_fast_init", "low_cpu_mem_usage", "from_tf", "from_flax", "offload_state_dict")
FLASH_CHECKS = {"flash_attention_2": "is_flash_attn_2_available", "flash_attention_3": "is_flash_attn_3_available"}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def torch_dtype(name: str) -> Any:
    import torch

    try:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    except KeyError:
        raise BackendError(f"unknown precision {name!r} (float32, float16 or bfloat16)") from None


def transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def default_device() -> str:
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


@dataclass
class LoadPlan:
    """What ``load`` will do: the exact ``from_pretrained`` keywords and everything around them."""

    name: str
    weights: str
    kwargs: dict[str, Any]
    device: str
    move_to: str | None = None
    compile_forward: dict[str, Any] | None = None
    matmul_precision: str | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "from_pretrained_kwargs": jsonable(self.kwargs),
            "placement": f"model.to({self.move_to!r}) after loading (accelerate not installed)"
            if self.move_to
            else f"from_pretrained(device_map={self.kwargs.get('device_map')!r})",
            "compile_forward": self.compile_forward,
            "float32_matmul_precision": self.matmul_precision,
        }


def _check_attention(name: str) -> None:
    check = FLASH_CHECKS.get(name)
    if check is not None:
        import transformers.utils as tu

        if not getattr(tu, check, lambda: False)():
            raise BackendError(
                f"attn_implementation {name!r} is not available here (flash-attn package missing or no CUDA); "
                "install it, or use sdpa (no silent fallback: the result would be mislabelled)"
            )
    if name == "flex_attention":
        import transformers.utils as tu

        if not tu.is_torch_flex_attn_available():
            raise BackendError("attn_implementation 'flex_attention' needs a torch with flex attention")


def _placement(device_map: Any, kwargs: dict[str, Any]) -> tuple[str, str | None]:
    """Put the device map into ``kwargs``; return (primary device, device to move to after loading)."""
    import torch

    spreading = isinstance(device_map, dict) or device_map in SPREADING_DEVICE_MAPS
    if spreading:
        if not installed("accelerate"):
            raise BackendError(f"device_map {device_map!r} needs the accelerate package (pip install accelerate)")
        kwargs["device_map"] = device_map
        return ("cuda:0" if torch.cuda.is_available() else "cpu"), None
    device = default_device() if device_map is None else str(device_map)
    if device.isdigit():
        device = f"cuda:{device}"
    if device == "cuda":
        device = "cuda:0"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"device_map {device!r} asks for CUDA, which is not available here")
    if installed("accelerate"):
        kwargs["device_map"] = device
        return device, None
    return device, device


def plan_load(experiment: Any) -> LoadPlan:
    """The load plan for an ExperimentConfig (read by attribute; no pydantic needed here)."""
    section = experiment.transformers
    model = experiment.model
    if model is None:
        raise BackendError("the experiment names no model")
    _check_attention(section.attn_implementation)
    kwargs: dict[str, Any] = {
        "dtype": torch_dtype(experiment.precision),
        "attn_implementation": section.attn_implementation,
        "trust_remote_code": section.trust_remote_code,
    }
    notes: list[str] = []
    if model.weights == "random":
        for name in ("revision", "gguf_file"):
            if getattr(model, name) is not None:
                raise BackendError(f"model.{name} applies to pretrained weights; weights: random builds from a config")
    else:
        if model.revision is not None:
            kwargs["revision"] = model.revision
        if model.gguf_file is not None:
            kwargs["gguf_file"] = model.gguf_file
    device, move_to = _placement(section.device_map, kwargs)
    if section.max_memory is not None:
        kwargs["max_memory"] = dict(section.max_memory)
    if section.offload_folder is not None:
        kwargs["offload_folder"] = section.offload_folder
    if section.low_cpu_mem_usage is not None:
        if transformers_major() >= 5:
            if not section.low_cpu_mem_usage:
                raise BackendError("low_cpu_mem_usage: false cannot be honoured: transformers >= 5 always loads low-memory")
            notes.append("transformers.low_cpu_mem_usage: transformers >= 5 always loads low-memory; not passed")
        else:
            kwargs["low_cpu_mem_usage"] = section.low_cpu_mem_usage
    if section.use_kernels:
        if not installed("kernels"):
            raise BackendError("use_kernels: true needs the kernels package (pip install kernels)")
        kwargs["use_kernels"] = True
    if section.experts_implementation is not None:
        kwargs["experts_implementation"] = section.experts_implementation
    quant = section.quantization
    if quant.enabled:
        if not installed("bitsandbytes"):
            raise BackendError(
                "transformers.quantization needs the bitsandbytes package, which is not installed "
                "(pip install bitsandbytes; it needs a CUDA GPU)"
            )
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(**quant.bnb_kwargs())
    extra = dict(section.extra.load)
    if transformers_major() >= 5:
        dropped = [key for key in extra if key in DROPPED_BY_TRANSFORMERS_5]
        if dropped:
            raise BackendError(
                f"extra.load {', '.join(dropped)}: ignored by transformers >= 5 (it would be dropped silently)"
            )
    kwargs.update(extra)
    compile_forward = None
    if section.torch_compile != "off" and section.cache_implementation not in ("static", "offloaded_static"):
        compile_forward = section.compile_options()
    return LoadPlan(
        name=model.name,
        weights=model.weights,
        kwargs=kwargs,
        device=device,
        move_to=move_to,
        compile_forward=compile_forward,
        matmul_precision=section.float32_matmul_precision,
        notes=notes,
    )


def causal_lm_class(config: Any) -> Any:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    try:
        return MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    except KeyError:
        raise BackendError(f"model_type {config.model_type!r} has no causal-LM class in transformers") from None


def random_config(name: str, overrides: dict[str, Any] | None = None) -> tuple[Any, str]:
    """A transformers config for a random-weight model, with ``overrides`` applied."""
    from transformers import AutoConfig

    values, origin = resolve_architecture(name)
    values = {**values, **(overrides or {})}
    model_type = values.pop("model_type")
    try:
        return AutoConfig.for_model(model_type, **values), origin
    except (ValueError, KeyError) as exc:
        raise BackendError(f"{origin}: transformers cannot build model_type {model_type!r} ({exc})") from None


def _quiet_transformers() -> Any:
    """Silence the load report and progress bars (warnings still reach our capture handler)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    return was_enabled


def load_random(config: Any, kwargs: dict[str, Any], seed: int) -> Any:
    """Random weights through ``from_pretrained`` itself, so every load keyword applies.

    No checkpoint: every weight is "missing" and initialised by the model's own initialiser, on
    the target device, after ``torch.manual_seed(seed)``. Quantised loads first write the random
    model to a temporary checkpoint (the quantiser needs real weights to convert).
    """
    import torch

    kwargs = dict(kwargs)
    config = _apply_config_keywords(config, kwargs)
    cls = causal_lm_class(config)
    report_logger = logging.getLogger("transformers.modeling_utils")
    report_logger.addFilter(_drop_load_report)
    torch.manual_seed(seed)
    try:
        if "quantization_config" not in kwargs:
            return cls.from_pretrained(None, config=config, state_dict={}, **kwargs)
        folder = tempfile.mkdtemp(prefix="lem-random-")
        try:
            plain = cls.from_pretrained(None, config=config, state_dict={}, dtype=kwargs.get("dtype"))
            plain.save_pretrained(folder)
            del plain
            return cls.from_pretrained(folder, **kwargs)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        report_logger.removeFilter(_drop_load_report)


def _drop_load_report(record: logging.LogRecord) -> bool:
    """Random weights are "missing" by design: the load report and the "both tied weights absent"
    notice (transformers ties them anyway, as in its own empty-state-dict init tests) are noise."""
    text = str(record.msg)
    return "LOAD REPORT" not in text and "both are absent from the checkpoint" not in text


def _apply_config_keywords(config: Any, kwargs: dict[str, Any]) -> Any:
    """Like from_pretrained does for a checkpoint: keywords naming config attributes update the config."""
    import copy

    config = copy.deepcopy(config)
    for key in [k for k in kwargs if not k.startswith("_") and hasattr(config, k) and k not in _LOAD_ONLY]:
        setattr(config, key, kwargs.pop(key))
    return config


_LOAD_ONLY = frozenset(
    {"dtype", "torch_dtype", "attn_implementation", "experts_implementation", "device_map", "trust_remote_code",
     "quantization_config", "use_kernels", "max_memory", "offload_folder"}
)


def load_model(plan: LoadPlan, seed: int, config_overrides: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """The model for ``plan`` and a description of where it came from."""
    was_bar = _quiet_transformers()
    info: dict[str, Any] = {}
    try:
        if plan.weights == "random":
            config, origin = random_config(plan.name, config_overrides)
            info["model_source"] = origin
            info["config_overrides"] = jsonable(config_overrides or {})
            model = load_random(config, plan.kwargs, seed)
        else:
            from transformers import AutoModelForCausalLM

            info["model_source"] = plan.name
            model = AutoModelForCausalLM.from_pretrained(plan.name, **plan.kwargs)
    except BackendError:
        raise
    except (OSError, ValueError, ImportError, TypeError, RuntimeError) as exc:
        raise BackendError(f"loading {plan.name!r} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if was_bar:
            from transformers.utils import logging as hf_logging

            hf_logging.enable_progress_bar()
    if plan.move_to is not None:
        model = model.to(plan.move_to)
    model.eval()
    if plan.compile_forward is not None:
        import torch

        model.forward = torch.compile(model.forward, **plan.compile_forward)
    return model, info


def build_random_model(
    name: str,
    *,
    dtype: str = "bfloat16",
    device: str | None = None,
    seed: int = 0,
    attn_implementation: str = "sdpa",
    config_overrides: dict[str, Any] | None = None,
) -> Any:
    """A random-weight model built directly on ``device`` with ``from_config`` (no accelerate needed).

    The lean path for standalone scripts; the backend itself loads through :func:`load_model`.
    """
    import torch
    from transformers import AutoModelForCausalLM

    config, _ = random_config(name, config_overrides)
    torch.manual_seed(seed)
    with torch.device(device or default_device()):
        model = AutoModelForCausalLM.from_config(
            config, dtype=torch_dtype(dtype), attn_implementation=attn_implementation
        )
    return model.eval()

