"""Prompts for a vLLM session: its tokenizer, the token space of synthetic prompts, and the engine inputs.

A mixin of :class:`.vllm_backend.VllmSession`; vllm and transformers are imported inside methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_llenergy.backends.errors import BackendError
from pytest_llenergy.backends.session import EngineSession
from pytest_llenergy.config.vllm_section import VllmConfig

if TYPE_CHECKING:
    from pytest_llenergy.backends.base import Workload


class VllmPrompts(EngineSession[VllmConfig]):
    """Tokenizer and prompt-input methods of `VllmSession` (which sets the attributes below)."""

    llm: Any
    _special: set[int]

    def _model_tokenizer(self) -> Any:
        return self._engine_tokenizer() or self._hf_tokenizer()

    def _engine_tokenizer(self) -> Any:
        """vLLM's own tokenizer (the model's, loaded by the engine), or None."""
        try:
            tok = self.llm.get_tokenizer()
        except Exception:  # noqa: BLE001 - e.g. skip_tokenizer_init; fall back to transformers
            return None
        return tok if callable(tok) and hasattr(tok, "all_special_ids") else None

    def _hf_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        spec = self.spec
        kwargs: dict[str, Any] = {"revision": spec.revision} if spec.revision else {}
        try:
            return AutoTokenizer.from_pretrained(spec.name, **kwargs)
        except (OSError, ValueError) as exc:
            raise BackendError(f"no tokenizer for {spec.name!r}: {exc}") from exc

    def _token_space(self) -> tuple[int, list[int]]:
        """(vocabulary size, special ids) for synthetic prompts, as the transformers backend picks them."""
        if self.random:
            return int(self._config["vocab_size"]), sorted(self._special)
        hf = getattr(getattr(getattr(self.llm, "llm_engine", None), "model_config", None), "hf_config", None)
        vocab = int(getattr(hf, "vocab_size", 0) or 0)
        specials: set[int] = set()
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(hf, name, None)
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if v is not None:
                    specials.add(int(v))
        try:
            tok = self.tokenizer
        except BackendError:
            if not vocab:
                raise
            return vocab, sorted(specials)
        specials.update(int(i) for i in tok.all_special_ids)
        return (min(vocab, len(tok)) if vocab else len(tok)), sorted(specials)

    def _prompt_mode(self, workload: Workload) -> tuple[str, str | None]:
        wanted = self.section.prompt_input
        if workload.texts is None:
            if wanted == "text":
                raise BackendError("vllm.prompt_input: text needs a text workload (builtin or a prompt file)")
            return "tokens", None
        if wanted != "auto":
            return wanted, None
        flat = [p for b in workload.batches for p in b]
        tok = self.tokenizer
        encoded = tok(list(workload.texts), add_special_tokens=True)["input_ids"]
        mismatched = sum(1 for ids, want in zip(encoded, flat) if list(ids) != list(want))
        if mismatched:
            return "tokens", (
                f"{mismatched} of {len(flat)} prompts were truncated to input_tokens; all prompts go in as token ids"
            )
        return "text", None

    def _engine_inputs(self, workload: Workload, mode: str) -> list[list[Any]]:
        if mode == "text" and workload.texts is not None:
            texts = iter(workload.texts)
            return [[next(texts) for _ in batch] for batch in workload.batches]
        from vllm.inputs import TokensPrompt

        return [[TokensPrompt(prompt_token_ids=list(p)) for p in batch] for batch in workload.batches]
