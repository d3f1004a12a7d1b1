"""Errors of container dispatch: each message says what is wrong and what to do."""

from __future__ import annotations


class DispatchError(RuntimeError):
    """Container dispatch cannot go on (no daemon, no compose, image missing, bad mount)."""


# Exit statuses that come from docker or the shell rather than from pytest in the container.
_EXIT_MEANINGS = {
    125: "docker could not create or start the container",
    126: "the command in the container could not be invoked (not executable?)",
    127: "the command was not found in the container (is pytest-llenergy installed in the image?)",
    137: "the container was killed (SIGKILL: out of memory, or a timeout)",
    139: "the process in the container crashed (SIGSEGV)",
    143: "the container was stopped (SIGTERM)",
}

# pytest's own exit codes (pytest.ExitCode), as the container reports them.
_PYTEST_EXITS = {
    0: "all tests passed",
    1: "tests failed",
    2: "interrupted",
    3: "pytest internal error",
    4: "pytest usage error",
    5: "no tests collected",
}


def describe_exit(code: int, *, pytest_ran: bool = True) -> str:
    """A readable meaning of a container's exit status (pytest's codes only when pytest reported)."""
    if code in _EXIT_MEANINGS:
        return f"exit {code}: {_EXIT_MEANINGS[code]}"
    if pytest_ran and code in _PYTEST_EXITS:
        return f"exit {code}: {_PYTEST_EXITS[code]}"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit {code}"
