"""Backend sections of an experiment: one typed model per backend, each in its own module.

Each field's ``description`` is its documentation: docs/parameters.md is generated from them.
"""

from __future__ import annotations

from .base import StrictModel
from .tensorrt_section import TensorrtConfig
from .transformers_section import TransformersConfig
from .vllm_section import VllmConfig

BACKEND_SECTIONS: dict[str, type[StrictModel]] = {
    "transformers": TransformersConfig,
    "vllm": VllmConfig,
    "tensorrt": TensorrtConfig,
}

__all__ = ["BACKEND_SECTIONS", "TensorrtConfig", "TransformersConfig", "VllmConfig"]
