"""One error type for everything a user can get wrong in a campaign file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

MAX_LISTED_PROBLEMS = 8


class CampaignError(Exception):
    """A campaign that cannot be used: names the file and the field path of each problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        shown = self.problems[:MAX_LISTED_PROBLEMS]
        more = len(self.problems) - len(shown)
        if len(shown) == 1:
            text = f"{self.source}: {shown[0]}"
        else:
            text = f"{self.source}: {len(self.problems)} problems\n" + "\n".join(
                f"  {p}" for p in shown
            )
        if more > 0:
            text += f"\n  ... and {more} more"
        return text


def _describe(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    msg = str(error.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if kind.startswith("literal_error") or kind == "enum":
        return f"{msg} (got {error.get('input')!r})"
    return msg


def format_location(prefix: Iterable[str | int], loc: Iterable[str | int]) -> str:
    """Join a field path: ``grid.shared.precision`` or ``experiments[2].model``."""
    out = ""
    for part in [*prefix, *loc]:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out += f".{part}" if out else str(part)
    return out


def problems_from_validation(
    exc: ValidationError, prefix: Sequence[str | int] = ()
) -> list[str]:
    """Turn a pydantic error into one short line per problem, field path first."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [p for p in error.get("loc", ()) if not _is_union_tag(p)]
        path = format_location(prefix, loc)
        line = f"{path}: {_describe(error)}" if path else _describe(error)
        if line not in lines:
            lines.append(line)
    return lines


_UNION_TAGS = {"str", "int", "float", "bool", "dict", "list", "none", "fixed", "adaptive"}


def _is_union_tag(part: str | int) -> bool:
    """pydantic puts union member names (``str``, ``literal['a']``, ``PromptFile``) into locations."""
    if isinstance(part, int):
        return False
    return part in _UNION_TAGS or "[" in part or part[:1].isupper()
