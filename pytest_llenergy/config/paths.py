"""Dotted paths into config models and dicts: checking, setting, deep merging."""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

from pydantic import BaseModel


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        found = []
        for arg in typing.get_args(annotation):
            found.extend(_model_types(arg))
        return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def check_path(model: type[BaseModel], path: str) -> str | None:
    """None when ``path`` names a field of ``model`` (through nested models), else the problem."""
    current: list[type[BaseModel]] = [model]
    parts = path.split(".")
    for depth, part in enumerate(parts):
        fields = [m.model_fields[part] for m in current if part in m.model_fields]
        if not fields:
            return "unknown key" if depth == 0 else f"unknown key {part!r}"
        if depth < len(parts) - 1:
            nested = [t for f in fields for t in _model_types(f.annotation)]
            if not nested:
                return f"{'.'.join(parts[: depth + 1])} has no sub-fields"
            if part == "extra" or any(_is_free_dict(f.annotation) for f in fields):
                return None
            current = nested
    return None


def _is_free_dict(annotation: Any) -> bool:
    return typing.get_origin(annotation) is dict


def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating (or replacing non-dict) levels."""
    parts = path.split(".")
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if isinstance(child, str) and part == "model":
            child = {"name": child}
        if not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge recursively, everything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
