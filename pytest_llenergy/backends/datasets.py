"""Prompts from public datasets (``prompts: {dataset: NAME, split, field, n}``) for comparable workloads.

The `datasets` library (extra ``datasets``) loads a hub dataset (``tatsu-lab/alpaca``,
``openai/gsm8k`` with ``subset: main``, the AI Energy Score task sets such as
``AIEnergyScore/text_generation``) or a folder written by ``Dataset.save_to_disk``. The texts are
then cached as JSONL under ``$LEM_CACHE_DIR/prompts/`` keyed by the source, so later runs (offline,
on another worker, without the library) read them from there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pytest_llenergy.backends.cache import cache_root
from pytest_llenergy.backends.errors import PromptSourceError

TEXT_FIELDS = ("text", "prompt", "instruction", "question", "input")


def local_path(spec: Any, base_dir: str | Path | None) -> Path | None:
    """The ``save_to_disk`` folder ``spec.dataset`` names, or None for a hub id."""
    path = Path(spec.dataset).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path if path.is_dir() else None


def cache_file(spec: Any, base_dir: str | Path | None = None) -> Path:
    """Where the texts of this source are cached (a local folder is keyed by its absolute path)."""
    local = local_path(spec, base_dir)
    source = str(local.resolve()) if local is not None else spec.dataset
    key = json.dumps([source, spec.subset, spec.split, spec.field, spec.n])
    slug = "".join(c if c.isalnum() else "-" for c in Path(spec.dataset).name.lower()).strip("-") or "dataset"
    return cache_root() / "prompts" / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsonl"


def dataset_texts(spec: Any, base_dir: str | Path | None = None) -> list[str]:
    """The prompt texts of a dataset source: from the cache, else loaded and cached."""
    path = cache_file(spec, base_dir)
    if path.is_file():
        return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    # imported here: config/__init__ needs pydantic, which the GPU validation scripts run without
    # (they import backends.workload, hence this module)
    from pytest_llenergy.config.files import write_atomically

    texts = _load(spec, base_dir)
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    write_atomically(path, lambda partial: partial.write_text(lines, encoding="utf-8"))
    return texts


def _load(spec: Any, base_dir: str | Path | None) -> list[str]:
    try:
        import datasets
    except ImportError:
        raise PromptSourceError(f"dataset {spec.dataset!r}: the `datasets` library is not installed "
                                "(pip install 'pytest-llenergy[datasets]')") from None
    local = local_path(spec, base_dir)
    try:
        if local is not None:
            data = datasets.load_from_disk(str(local))
            if isinstance(data, datasets.DatasetDict):
                if spec.split not in data:
                    raise PromptSourceError(f"dataset {spec.dataset!r}: no split {spec.split!r} (has {', '.join(data)})")
                data = data[spec.split]
        else:
            data = datasets.load_dataset(spec.dataset, spec.subset, split=spec.split)
    except PromptSourceError:
        raise
    except Exception as exc:  # the library raises many kinds (offline, not found, bad split)
        raise PromptSourceError(f"dataset {spec.dataset!r}: {type(exc).__name__}: {str(exc)[:300]}") from None
    return _texts(data, spec)


def _texts(data: Any, spec: Any) -> list[str]:
    columns = list(data.column_names)
    field = spec.field or next((f for f in TEXT_FIELDS if f in columns), None)
    if field is None or field not in columns:
        wanted = repr(spec.field) if spec.field else f"any of {', '.join(TEXT_FIELDS)}"
        raise PromptSourceError(f"dataset {spec.dataset!r}: no column {wanted} (columns: {', '.join(columns)}); set field:")
    rows = data.select(range(min(spec.n, len(data)))) if spec.n else data
    texts = [str(v) for v in rows[field] if v is not None and str(v).strip()]
    if not texts:
        raise PromptSourceError(f"dataset {spec.dataset!r}: column {field!r} holds no text")
    return texts
