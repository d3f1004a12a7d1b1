"""The `vllm:` section: vLLM offline engine settings."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import StrictModel


class VllmExtra(StrictModel):
    """Keywords passed verbatim to vLLM."""

    engine: dict[str, Any] = Field(default_factory=dict, description="Extra keyword arguments for `vllm.LLM`.")
    sampling: dict[str, Any] = Field(default_factory=dict, description="Extra keyword arguments for `SamplingParams`.")


class VllmConfig(StrictModel):
    """vLLM offline engine settings."""

    max_num_seqs: int | None = Field(None, ge=1, description="Maximum sequences per scheduler step.")
    enforce_eager: bool = Field(False, description="Disable CUDA graphs.")
    extra: VllmExtra = Field(default_factory=VllmExtra, description="Pass-through keywords.")
