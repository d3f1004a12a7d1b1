"""Backend sections of an experiment: one typed model per backend, each in its own module.

Each field's ``description`` is its documentation: docs/parameters.md is generated from them.
"""

from __future__ import annotations

from pytest_llenergy.config.base import StrictModel
from pytest_llenergy.config.tensorrt_section import TensorrtConfig
from pytest_llenergy.config.transformers_section import TransformersConfig
from pytest_llenergy.config.vllm_section import VllmConfig

BACKEND_SECTIONS: dict[str, type[StrictModel]] = {
    "transformers": TransformersConfig,
    "vllm": VllmConfig,
    "tensorrt": TensorrtConfig,
}

__all__ = ["BACKEND_SECTIONS", "TensorrtConfig", "TransformersConfig", "VllmConfig"]
