"""A deterministic tokenizer built in code for random-weight models (no download).

Byte-level BPE trained on the builtin prompt set: every text encodes (no unknown token), the same
vocabulary comes out on every machine, and its size is capped by the model's vocabulary. Special
tokens sit at fixed ids, which the backend writes into the random model's config.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN = "<|pad|>", "<|bos|>", "<|eos|>"
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIAL_IDS = (PAD_ID, BOS_ID, EOS_ID)
#: cap on the trained vocabulary (the builtin corpus yields ~3,500 tokens at most anyway)
MAX_VOCAB = 4096
#: smallest model vocabulary a byte-level tokenizer fits in (256 bytes + 3 special tokens)
MIN_VOCAB = 256 + len(SPECIAL_IDS)


@lru_cache(maxsize=8)
def _raw_tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from pytest_llenergy.backends.workload import builtin_texts

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD_TOKEN, BOS_TOKEN, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        min_frequency=1,
    )
    tok.train_from_iterator(builtin_texts(), trainer)
    assert [tok.token_to_id(t) for t in (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN)] == list(SPECIAL_IDS)
    return tok.to_str()


def build_tokenizer(model_vocab_size: int) -> Any:
    """A ``PreTrainedTokenizerFast`` (left padding) whose vocabulary fits ``model_vocab_size``."""
    if model_vocab_size < MIN_VOCAB:
        from pytest_llenergy.backends.errors import BackendError

        raise BackendError(f"vocab_size {model_vocab_size} is too small for the byte-level tokenizer (>= {MIN_VOCAB})")
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer.from_str(_raw_tokenizer_json(min(model_vocab_size, MAX_VOCAB)))
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
    )
