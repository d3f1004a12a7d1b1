"""Names shared by the plugin's hook modules: stash keys, report property names and small helpers.

Hook modules import from here (downward); nothing here imports a hook module.
"""

from __future__ import annotations

import pytest

from pytest_llenergy.plugin.measurement.recorder import ItemRecorder
from pytest_llenergy.plugin.state import CampaignItem, run_setting

EXPERIMENT_ARG = "lem_experiment"
RECORDER = pytest.StashKey[ItemRecorder]()
LEM_KEY_PROPERTY = "lem_key"
LEM_RESULT_PROPERTY = "lem_result"
LEM_CONTAINER_PROPERTY = "lem_container"
#: A plain test's gate verdict on its call report (travels from xdist workers like ``lem_windows``).
VERDICT_ATTR = "lem_verdict"
PREVIOUS_ITEM = pytest.StashKey[pytest.Item]()  # the item the last thermal gap followed


def campaign_item(item: pytest.Item) -> CampaignItem | None:
    """The campaign item behind a test item, or None for ordinary tests."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    value = callspec.params.get(EXPERIMENT_ARG)
    return value if isinstance(value, CampaignItem) else None


def force_cold_start(config: pytest.Config) -> bool:
    """Whether every item reloads its model (command line > campaign > ini)."""
    return bool(run_setting(config, "lem_force_cold_start"))


def status_line(config: pytest.Config, message: str, *, min_verbosity: int = 0) -> None:
    """Write ``llenergy: message`` on its own line, unless the run is quieter than ``min_verbosity``
    (0: ``-q`` quietens it; -1: only ``-qq`` does)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < min_verbosity:
        return
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"llenergy: {message}")
    else:
        reporter.write_line(f"llenergy: {message}")
