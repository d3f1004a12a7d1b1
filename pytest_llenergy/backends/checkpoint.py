"""Random-weight models saved as a Hugging Face checkpoint, for engines that load from a directory.

vLLM and TensorRT-LLM cannot take an in-memory model: a `weights: random` experiment is written
once to ``$LEM_CACHE_DIR/checkpoints/<slug>-<key>/`` (weights + config + the tokenizer built in
code) and loaded from there. The weights come from the transformers backend's own helper with the
same config overrides and seed, so a transformers experiment and a vLLM experiment on the same
model, precision and ``workload.seed`` run the very same weights (a fair comparison).

The key hashes the resolved config, precision, seed and the torch/transformers versions (their
initialisers decide the values). Writing goes to a temporary sibling that is renamed into place,
so concurrent workers never see half a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pytest_llenergy.backends.cache import CACHE_ENV, cache_root  # noqa: F401  (re-exported)
from pytest_llenergy.backends.errors import BackendError

MARKER = "lem-checkpoint.json"


def special_overrides() -> dict[str, int]:
    """Config overrides the transformers backend applies to random models (the built-in tokenizer's ids)."""
    from pytest_llenergy.backends.tokenizer import BOS_ID, EOS_ID, PAD_ID

    return {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": PAD_ID}


def random_model_config(name: str) -> tuple[Any, str]:
    """The transformers config of a random-weight model, exactly as the transformers backend builds it."""
    from pytest_llenergy.backends.transformers.loading import random_config

    return random_config(name, special_overrides())


def checkpoint_key(config_dict: dict[str, Any], precision: str, seed: int) -> str:
    import torch
    import transformers

    config_dict = {k: v for k, v in config_dict.items() if k not in ("transformers_version", "_name_or_path")}
    payload = {
        "config": config_dict,
        "precision": precision,
        "seed": seed,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def random_checkpoint(name: str, precision: str, seed: int, root: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The directory of the saved random-weight checkpoint for (name, precision, seed), built if missing.

    Returns the directory and a description for ``engine_info`` (source, key, whether it was reused).
    """
    from pytest_llenergy.backends.jsonable import jsonable

    config, origin = random_model_config(name)
    key = checkpoint_key(config.to_dict(), precision, seed)
    slug = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in Path(name).stem.lower()).strip("-") or "model"
    folder = (root or cache_root() / "checkpoints") / f"{slug}-{key}"
    info: dict[str, Any] = {"checkpoint": str(folder), "checkpoint_key": key, "model_source": origin, "seed": seed}
    if (folder / MARKER).is_file():
        info["checkpoint_reused"] = True
        return folder, info
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        _write_checkpoint(config, precision, seed, staging)
        (staging / MARKER).write_text(
            json.dumps({"name": name, "origin": origin, "precision": precision, "seed": seed,
                        "overrides": jsonable(special_overrides())}, indent=2)
        )
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / MARKER).is_file():  # a concurrent writer won only if it finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    info["checkpoint_reused"] = False
    return folder, info


def _write_checkpoint(config: Any, precision: str, seed: int, folder: Path) -> None:
    from pytest_llenergy.backends.tokenizer import build_tokenizer
    from pytest_llenergy.backends.transformers.loading import load_random, torch_dtype

    try:
        model = load_random(config, {"dtype": torch_dtype(precision)}, seed)
    except BackendError:
        raise
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise BackendError(f"building the random-weight model failed: {type(exc).__name__}: {exc}") from exc
    model.save_pretrained(folder)
    del model
    build_tokenizer(int(config.vocab_size)).save_pretrained(folder)
