"""The `tensorrt:` section: TensorRT-LLM build and runtime settings."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import StrictModel


class TensorrtExtra(StrictModel):
    """Keywords passed verbatim to TensorRT-LLM."""

    build: dict[str, Any] = Field(default_factory=dict, description="Extra build settings.")
    runtime: dict[str, Any] = Field(default_factory=dict, description="Extra runtime settings.")


class TensorrtConfig(StrictModel):
    """TensorRT-LLM engine settings."""

    max_batch_size: int | None = Field(None, ge=1, description="Engine build maximum batch size.")
    extra: TensorrtExtra = Field(default_factory=TensorrtExtra, description="Pass-through keywords.")
