"""One campaign field at a time: its model, its default, and its value validated as YAML would be.

The plugin's options override campaign fields (``--lem-order`` overrides ``order``); these helpers
let an option reuse the field's schema (type, bounds, allowed values, default) instead of
declaring them again.
"""

from __future__ import annotations

import functools
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from pytest_llenergy.config.campaign import CampaignConfig
from pytest_llenergy.config.errors import problems_from_validation

UNSET: Any = object()  # "the campaign does not set this field"


def _leaf_model(path: str) -> tuple[type[BaseModel], str]:
    """The model class that holds the last part of a dotted ``CampaignConfig`` path."""
    model: type[BaseModel] = CampaignConfig
    *parents, leaf = path.split(".")
    for part in parents:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise KeyError(f"{path}: {part} is not a section")
        model = annotation
    if leaf not in model.model_fields:
        raise KeyError(f"{path}: no such campaign field")
    return model, leaf


def validate_field(path: str, raw: Any) -> Any:
    """``raw`` validated as the campaign field ``path`` (``gaps.max_wait``); ValueError with one line."""
    model, leaf = _leaf_model(path)
    try:
        checked = model.__pydantic_validator__.validate_assignment(model.model_construct(), leaf, raw)
    except ValidationError as exc:
        problems = problems_from_validation(exc)
        raise ValueError("; ".join(p.split(": ", 1)[-1] for p in problems)) from None
    return getattr(checked, leaf)


@functools.cache
def _defaults() -> CampaignConfig:
    return CampaignConfig.model_construct(name="")


def field_default(path: str) -> Any:
    """The default of the campaign field ``path``."""
    value: Any = _defaults()
    for part in path.split("."):
        value = getattr(value, part)
    return value


def field_choices(path: str) -> tuple[str, ...] | None:
    """The allowed values of a ``Literal`` campaign field, else None."""
    model, leaf = _leaf_model(path)
    annotation = model.model_fields[leaf].annotation
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    return None


def explicit_value(campaign: BaseModel, path: str) -> Any:
    """The field's value when the campaign file sets it (every section on the way set too), else UNSET."""
    value: Any = campaign
    for part in path.split("."):
        if not isinstance(value, BaseModel) or part not in value.model_fields_set:
            return UNSET
        value = getattr(value, part)
    return value
