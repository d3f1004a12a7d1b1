"""One status line on the terminal from inside a running item (capture suspended while writing)."""

from __future__ import annotations

import pytest


def status_line(config: pytest.Config, message: str) -> None:
    """Write ``llenergy: message`` on its own line, unless ``-q`` quietened the run."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < 0:
        return
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"llenergy: {message}")
    else:
        reporter.write_line(f"llenergy: {message}")
