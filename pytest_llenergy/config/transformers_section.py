"""The `transformers:` section: PyTorch / Hugging Face engine settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import StrictModel


class TransformersExtra(StrictModel):
    """Keywords passed verbatim to the engine, for parameters without a typed field."""

    load: dict[str, Any] = Field(default_factory=dict, description="Extra keyword arguments for `from_pretrained`.")
    generate: dict[str, Any] = Field(default_factory=dict, description="Extra keyword arguments for `generate`.")


class TransformersConfig(StrictModel):
    """PyTorch / Hugging Face transformers engine settings."""

    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = Field(
        "sdpa", description="Attention kernel passed to `from_pretrained`."
    )
    extra: TransformersExtra = Field(default_factory=TransformersExtra, description="Pass-through keywords.")
