"""Render docs/campaign-reference.md from the pydantic models: one source of truth per field."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


def type_name(annotation: Any) -> str:
    """A short readable type: ``int | None``, ``'sdpa' | 'eager'``, ``list[str]``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin in (list, dict, tuple, set):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.get_default(call_default_factory=True, validated_data={})
        if isinstance(value, BaseModel):
            return "(see below)"
        return f"`{value!r}`"
    return "`null`" if field.default is None else f"`{field.default!r}`" if field.default is not PydanticUndefined else ""


def constraints_text(field: FieldInfo) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if isinstance(text := extra.get("constraints"), str):
        return text  # bounds a validator checks (unions cannot carry them as metadata)
    parts = []
    for item in field.metadata:
        for name, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "min length")):
            value = getattr(item, name, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def nested_models(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin is not None:
        return [m for a in typing.get_args(annotation) for m in nested_models(a)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def model_table(model: type[BaseModel], prefix: str) -> list[str]:
    lines = [f"### `{prefix}`" if prefix else "### (top level)", "", (model.__doc__ or "").strip(), "",
             "| field | type | default | constraints | meaning |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        kind = type_name(field.annotation).replace("|", "\\|")
        lines.append(f"| `{name}` | `{kind}` | {default_text(field)} | {constraints_text(field)} | {meaning} |")
    return lines + [""]


def walk(model: type[BaseModel], prefix: str, seen: set[str], alternative: bool = False) -> list[str]:
    """Tables for ``model`` and, depth first, every nested model (each of a union's models in turn)."""
    key = f"{prefix}#{model.__name__}"
    if key in seen:
        return []
    seen.add(key)
    lines = model_table(model, prefix)
    if alternative:  # one of several models a field accepts: say which
        lines[0] += f" ({model.__name__})"
    for name, field in model.model_fields.items():
        nested = nested_models(field.annotation)
        for member in nested:
            lines += walk(member, f"{prefix}.{name}" if prefix else name, seen, alternative=len(nested) > 1)
    return lines


def render_reference() -> str:
    """The whole campaign reference as Markdown."""
    from pytest_llenergy.config.campaign import CampaignConfig
    from pytest_llenergy.config.experiment import ExperimentConfig

    out = [
        "# Campaign file reference",
        "",
        "Generated from the pydantic models by `python scripts/gen_docs.py`; do not edit by hand",
        "(`tests/test_docs.py` fails when this file is stale). Every model rejects unknown keys.",
        "",
        "## Campaign",
        "",
    ]
    out += walk(CampaignConfig, "", set())
    out += [
        "## Experiment",
        "",
        "The keys allowed under `defaults:`, in each entry of `experiments:`, and as dotted paths in",
        "`grid.shared` (paths inside a backend section go in `grid.backend_overrides.<backend>`).",
        "",
    ]
    out += walk(ExperimentConfig, "experiment", set())
    return "\n".join(out).rstrip() + "\n"
