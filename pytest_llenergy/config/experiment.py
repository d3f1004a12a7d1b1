"""One experiment's effective configuration: what runs, on which engine, with which workload."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pytest_llenergy.config.base import StrictModel
from pytest_llenergy.config.phases import ArrivalSettings
from pytest_llenergy.config.sections import (
    BACKEND_SECTIONS,
    TensorrtConfig,
    TransformersConfig,
    VllmConfig,
)

Precision = Literal["float32", "float16", "bfloat16"]
KNOWN_BACKENDS = tuple(BACKEND_SECTIONS)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")


class ModelSpec(StrictModel):
    """Which model to run and where its weights come from."""

    name: str = Field(description="Hub id, local path, or a shipped architecture name (gpt2, smollm2-135m, ...).")
    weights: Literal["pretrained", "random"] = Field(
        "pretrained", description="`random`: build from the architecture config with random weights (no download)."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for `from_pretrained`.")
    gguf_file: str | None = Field(None, description="GGUF file inside the repository, passed to `from_pretrained`.")

    @field_validator("name")
    @classmethod
    def _name_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model name cannot be empty")
        return value


class PromptFile(StrictModel):
    """Prompts read from a .txt (one per line) or .jsonl (`text` or `prompt` field) file."""

    file: str = Field(description="Path to the prompt file, relative to the campaign file.")


class PromptDataset(StrictModel):
    """Prompts from a public dataset through the `datasets` library (extra `datasets`), cached for offline runs."""

    dataset: str = Field(description="Hub dataset id (`tatsu-lab/alpaca`, `openai/gsm8k`, `AIEnergyScore/text_generation`) "
                                     "or a folder written by `Dataset.save_to_disk` (relative to the campaign file).")
    subset: str | None = Field(None, description="Dataset configuration name (`main` for gsm8k).")
    split: str = Field("train", description="Split to read (`train`, `test`, ...).")
    field: str | None = Field(None, description="Column holding the prompt text; unset: the first of text, prompt, "
                                                "instruction, question, input.")
    n: int | None = Field(None, ge=1, le=1_000_000, description="Use the first n rows (unset: every row).")

    @field_validator("dataset")
    @classmethod
    def _dataset_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("dataset cannot be empty")
        return value


class WorkloadConfig(StrictModel):
    """What is fed to the model: prompts, lengths, batching."""

    prompts: Literal["synthetic", "builtin"] | PromptFile | PromptDataset = Field(
        "synthetic", description="`synthetic` random token ids, `builtin` shipped prompt set, `{file: path}` or "
                                 "`{dataset: NAME, split: ..., field: ..., n: ...}`."
    )
    num_prompts: int = Field(8, ge=1, le=1_000_000, description="Number of prompts per measured run.")
    input_tokens: int = Field(32, ge=1, le=1_000_000, description="Prompt length in tokens (synthetic: exact; text: truncated to).")
    output_tokens: int = Field(16, ge=1, le=1_000_000, description="New tokens per prompt; min = max so counts are exact.")
    batch_size: int = Field(1, ge=1, le=100_000, description="Prompts per generate call.")
    seed: int = Field(0, ge=0, description="Seed for synthetic prompts and sampling.")
    streaming: bool = Field(False, description="Stream tokens (batch 1) to measure TTFT and inter-token latency.")
    arrivals: ArrivalSettings | None = Field(
        None, description="Serving workload (vLLM): requests arrive over time (Poisson or a trace); unset: all at once, in batches.")

    @model_validator(mode="after")
    def _streaming_is_batch_one(self) -> WorkloadConfig:
        if self.streaming and self.batch_size != 1:
            raise ValueError("streaming measures per-request latency and needs batch_size: 1")
        return self


DECODER_PRESETS: dict[str, dict[str, Any]] = {
    "greedy": {"temperature": 0.0, "do_sample": False},
    "standard": {"temperature": 1.0, "do_sample": True, "top_k": 50, "top_p": 1.0},
    "creative": {"temperature": 1.2, "do_sample": True, "top_p": 0.95, "repetition_penalty": 1.1},
    "factual": {"temperature": 0.3, "do_sample": True, "top_k": 10, "top_p": 0.9},
}


class DecoderConfig(StrictModel):
    """Sampling settings; a preset fills every field the user left unset."""

    preset: Literal["greedy", "standard", "creative", "factual"] | None = Field(None, description="Named sampling preset.")
    temperature: float | None = Field(None, ge=0.0, le=10.0, description="Sampling temperature; 0 means greedy.")
    do_sample: bool | None = Field(None, description="Sample (true) or decode greedily (false).")
    top_k: int | None = Field(None, ge=0, description="Keep the k most likely tokens.")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    min_p: float | None = Field(None, ge=0.0, le=1.0, description="Minimum probability relative to the top token.")
    repetition_penalty: float | None = Field(None, gt=0.0, description="Penalty for repeated tokens (1 = none).")
    no_repeat_ngram_size: int | None = Field(None, ge=0, description="Forbid repeating n-grams of this size.")

    def resolved(self) -> dict[str, Any]:
        """Explicit values over the preset's, unset ones dropped; greedy when nothing says otherwise."""
        values = dict(DECODER_PRESETS.get(self.preset or "", {}))
        values.update(self.model_dump(exclude={"preset"}, exclude_none=True))
        if values.get("do_sample") is None:
            values["do_sample"] = bool(values.get("temperature", 0.0))
        return values


class ExperimentConfig(StrictModel):
    """The effective configuration of one experiment (defaults merged, grid point applied)."""

    name: str | None = Field(None, description="Optional label; becomes the readable part of the experiment id.")
    backend: str = Field("transformers", description="Inference engine: transformers, vllm or tensorrt.")
    model: ModelSpec | None = Field(None, description="The model; a bare string is its name.")
    precision: Precision = Field("float32", description="Weights and compute dtype.")
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig, description="Prompts and batching.")
    decoder: DecoderConfig = Field(default_factory=DecoderConfig, description="Sampling settings.")
    transformers: TransformersConfig | None = Field(None, description="transformers engine settings.")
    vllm: VllmConfig | None = Field(None, description="vLLM engine settings.")
    tensorrt: TensorrtConfig | None = Field(None, description="TensorRT-LLM engine settings.")

    @field_validator("model", mode="before")
    @classmethod
    def _model_from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, value: str | None) -> str | None:
        if value is not None and not NAME_PATTERN.match(value):
            raise ValueError("names use letters, digits, - and _ (at most 80, no path separators)")
        return value

    @field_validator("backend")
    @classmethod
    def _backend_is_known(cls, value: str) -> str:
        from pytest_llenergy.config.registry import known_backends

        names = known_backends()
        if value not in names:
            raise ValueError(f"unknown backend {value!r} (known: {', '.join(sorted(names))})")
        return value

    @model_validator(mode="after")
    def _sections_match_backend(self) -> ExperimentConfig:
        for section in KNOWN_BACKENDS:
            if section != self.backend and getattr(self, section) is not None:
                raise ValueError(f"a `{section}:` section does not apply to backend {self.backend!r}")
        if self.backend in BACKEND_SECTIONS and getattr(self, self.backend) is None:
            setattr(self, self.backend, BACKEND_SECTIONS[self.backend]())
        if self.workload.arrivals is not None and self.backend != "vllm":
            raise ValueError(f"workload.arrivals (a serving workload) runs on backend vllm, not {self.backend!r}")
        if self.backend == "tensorrt" and self.precision == "float32":
            raise ValueError("TensorRT-LLM does not run float32: use float16 or bfloat16")
        return self

    def section(self) -> StrictModel | None:
        """This experiment's backend section (None for third-party backends)."""
        return getattr(self, self.backend, None) if self.backend in BACKEND_SECTIONS else None
