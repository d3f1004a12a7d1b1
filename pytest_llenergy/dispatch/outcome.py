"""How one item's container went (what the host makes its reports from)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pytest_llenergy.dispatch.errors import describe_exit

Strategy = Literal["ephemeral", "persistent"]


@dataclass
class ContainerRun:
    """How one item's container went."""

    service: str
    strategy: Strategy
    image: str | None
    container: str
    argv: list[str]
    returncode: int
    output: str
    duration_s: float
    timed_out: bool = False
    error: str | None = None
    """Why the container could not run the item at all (set instead of a pytest outcome)."""
    image_id: str | None = None
    """The id of the image the container that ran the item was created from (``docker inspect``)."""
    hint: str | None = None
    """What docker's output says went wrong (used when no pytest report came back)."""

    def tail(self, lines: int) -> str:
        kept = self.output.rstrip().splitlines()[-lines:]
        return "\n".join(kept)

    def describe(self, pytest_ran: bool = True) -> str:
        if self.timed_out:
            return f"container {self.container} timed out after {self.duration_s:.0f} s and was killed"
        text = f"container {self.container}: {describe_exit(self.returncode, pytest_ran=pytest_ran)}"
        return text if pytest_ran or not self.hint else f"{text}: {self.hint}"
