"""The strict base every config model shares."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors; values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def default_of(model: type[BaseModel], name: str) -> Any:
    """The default ``model`` declares for its field ``name``: lower layers take their keyword defaults from
    here, so each default is declared once (in the config model)."""
    return model.model_fields[name].get_default(call_default_factory=True)
