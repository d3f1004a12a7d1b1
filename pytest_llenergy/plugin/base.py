"""What the plugin's parts share: the session object's stash key, per-item stash keys, report
property names and small helpers.

The sub-packages (``collection``, ``measurement``, ``gates``, ``reporting``, ``dispatch``) import from
here and from the other top-level modules, never from one another (``tests/test_architecture.py``);
nothing here imports a sub-package.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.plugin.options import resolve
from pytest_llenergy.plugin.recorder import ItemRecorder
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.state import CampaignItem, LemRun

EXPERIMENT_ARG = "lem_experiment"
SESSION = pytest.StashKey[LemSession]()
"""The process's :class:`~pytest_llenergy.plugin.session.LemSession` (``session_of``)."""
RECORDER = pytest.StashKey[ItemRecorder]()
"""A campaign item's result record (set in its setup)."""
WINDOWS = pytest.StashKey[list[dict[str, Any]]]()
"""Measured windows of an item (``WindowEnergy`` dicts), filled by the ``energy`` fixture; tokens
recorded after a window's block update its dict in place until the test's report is made."""
HANDLES = pytest.StashKey[list[Any]]()
"""The ``Window`` handles behind ``WINDOWS`` (sealed once the test's report is made)."""
FAILED_GATE = pytest.StashKey[str]()
"""Which gate failed an item (``budget`` or ``regression``), from its verdict to its report."""
LEM_KEY_PROPERTY = "lem_key"
LEM_RESULT_PROPERTY = "lem_result"
LEM_CONTAINER_PROPERTY = "lem_container"
#: A plain test's gate verdict on its call report (travels from xdist workers like ``lem_windows``).
VERDICT_ATTR = "lem_verdict"
GPU_KINDS = ("nvml", "replay")
"""Energy sources with an idle power to measure (a baseline) and a GPU to cool (adaptive gaps)."""


def session_of(config: pytest.Config) -> LemSession:
    """The process's session object, created empty on first use (``plugin/lifecycle.py`` configures it)."""
    session = config.stash.get(SESSION, None)
    if session is None:
        session = config.stash[SESSION] = LemSession(config)
    return session


def get_run(config: pytest.Config) -> LemRun | None:
    """The campaign run of this session, or None without a campaign."""
    session = config.stash.get(SESSION, None)
    return session.run if session is not None else None


def run_setting(config: pytest.Config, dest: str) -> Any:
    """:func:`~pytest_llenergy.plugin.options.resolve` against this session's campaign (if any)."""
    run = get_run(config)
    return resolve(config, dest, run.plan.campaign if run is not None else None)


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


def dispatch_mode(config: pytest.Config, run: LemRun | None) -> str:
    """``--lem-dispatch`` > the campaign's ``dispatch.mode`` > ``lem_dispatch``; local when dispatched."""
    if config.getoption("lem_dispatched", False):
        return "local"
    return str(resolve(config, "lem_dispatch", run.plan.campaign if run is not None else None))


def storage_root(config: pytest.Config) -> Path:
    """Where saved runs live (``--lem-storage``, relative to the rootdir)."""
    path = Path(resolve(config, "lem_storage"))
    return path if path.is_absolute() else config.rootpath / path


def report_property(report: pytest.TestReport, name: str) -> Any:
    """The value of a report's ``user_properties`` entry ``name`` (None when absent)."""
    for key, value in report.user_properties:
        if key == name:
            return value
    return None


def writable_problem(what: str, directory: Path) -> str | None:
    """None when a file can be created in ``directory``, else why not. Folders made to find out
    are removed again: a run refused before its first item leaves nothing behind."""
    made = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".lem-write-check-"):
            pass
    except OSError as exc:
        return f"{what}: {directory} is not writable ({exc.strerror or exc})"
    finally:
        for folder in made:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
    return None


def output_problems(config: pytest.Config, measured: bool) -> list[str]:
    """Output directories this process cannot write (the preflight's and docker dispatch's check)."""
    problems = []
    run = get_run(config)
    if run is not None and not run.is_worker:
        problems.append(writable_problem("results directory (--lem-results-dir / results_dir)", run.run_dir.path.parent))
    json_path = resolve(config, "lem_json")
    if json_path and measured:
        problems.append(writable_problem("--lem-json", Path(json_path).expanduser().resolve().parent))
    return [p for p in problems if p is not None]


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
