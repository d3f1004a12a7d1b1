"""The campaign reference rendered in this process (tests/test_docs.py checks it through gen_docs.py)."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel, Field

from pytest_llenergy.config.reference import (
    constraints_text,
    default_text,
    nested_models,
    render_reference,
    type_name,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "campaign-reference.md"


def test_the_reference_is_the_committed_doc():
    assert render_reference() == DOC.read_text()


class Inner(BaseModel):
    """An inner section."""

    x: int = 1


class Sample(BaseModel):
    required: int
    bounded: float = Field(0.5, gt=0, le=1)
    none: str | None = None
    listed: list[int] = Field(default_factory=lambda: [1, 2])
    inner: Inner = Field(default_factory=Inner)
    choice: typing.Literal["a", "b"] = "a"


def test_types_defaults_and_constraints():
    fields = Sample.model_fields
    assert type_name(fields["choice"].annotation) == "'a' | 'b'"
    assert type_name(fields["none"].annotation) == "str | null"
    assert type_name(fields["listed"].annotation) == "list[int]"
    assert type_name(dict[str, typing.Any]) == "dict[str, any]"
    assert type_name(typing.Annotated[int, "meta"]) == "int"
    assert default_text(fields["required"]) == "**required**"
    assert default_text(fields["listed"]) == "`[1, 2]`" and default_text(fields["inner"]) == "(see below)"
    assert default_text(fields["none"]) == "`null`" and default_text(fields["choice"]) == "`'a'`"
    assert constraints_text(fields["bounded"]) == "> 0, <= 1"
    assert nested_models(Sample.model_fields["inner"].annotation) == [Inner]
    assert nested_models(Inner | None) == [Inner] and nested_models(int) == []
