"""Errors a backend raises (no pydantic, no torch: importable by standalone scripts)."""

from __future__ import annotations


class BackendError(RuntimeError):
    """A backend cannot do what the experiment asks; the message says why and what to change."""


class PromptSourceError(BackendError):
    """A prompt source that cannot be used: names the file or dataset (and line) and the problem."""
