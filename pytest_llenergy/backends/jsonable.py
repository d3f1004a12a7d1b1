"""JSON-friendly copies of engine objects for ``engine_info`` (no pydantic: GPU scripts import it bare)."""

from __future__ import annotations

from typing import Any


def jsonable(value: Any) -> Any:
    """A JSON-friendly copy for ``engine_info``: mappings and sequences kept, objects with
    ``to_dict`` described by it, anything else (dtypes, enums) as its string."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return {"__class__": type(value).__name__, **jsonable(to_dict())}
        except Exception:  # noqa: BLE001 - a description only: fall back to the string
            return str(value)
    return str(value)
