"""Plain tests (the ``energy`` fixture outside a campaign) get what pytest-benchmark users get.

Every window reaches the controller on the test's report (``report.lem_windows``, which xdist
serialises); at session end the controller prints a table of every window, and ``--lem-save`` /
``--lem-autosave`` / ``--lem-compare`` / ``--lem-json`` work with or without a campaign. With a
campaign, the campaign's reporting includes these windows in its saved run and JSON report and
marks them handled; without one (or when the campaign measured nothing) this module does it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.plugin.base import (
    VERDICT_ATTR,
    WINDOWS,
    campaign_item,
    get_run,
    session_of,
    storage_root,
)
from pytest_llenergy.plugin.options import resolve
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.xdist import is_worker
from pytest_llenergy.results.store import atomic_write_json
from pytest_llenergy.results.windows import portable, window_key

REPORT_ATTR = "lem_windows"
DEFAULT_RULES = "energy_per_output_token:5% tokens_per_s:-5%"


class PlainWindows:
    """Collects plain-test windows on the controller; saves, compares and reports them at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.windows: dict[str, list[dict[str, Any]]] = {}
        self.handled = False  # the campaign's reporting saved / wrote them
        self.lines: list[str] = []
        self.comparisons: list[Any] = []
        #: budget (and comparison) verdicts of plain tests: ``{"key": nodeid, "budget": {...}}``
        self.verdicts: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for window in getattr(report, REPORT_ATTR, None) or []:
            self.windows.setdefault(window_key(report.nodeid, window.get("name") or "window"), []).append(window)
        verdict = getattr(report, VERDICT_ATTR, None)
        if verdict is not None:
            self.verdicts.append({"key": report.nodeid, "budget": verdict})

    def experiments(self) -> dict[str, Any]:
        from pytest_llenergy.results.windows import windows_experiments

        return windows_experiments(self.windows)

    def statistics(self) -> list[dict[str, Any]]:
        from pytest_llenergy.results.windows import window_statistics

        run = get_run(self.config)
        return window_statistics(self.windows, seed=run.seed if run is not None else 0)

    @pytest.hookimpl(wrapper=True, trylast=True)  # inside the terminal reporter's: its lines are ready for the summary
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Iterator[None]:
        result = yield  # the campaign's reporting (a plain hook) has run by now
        if self.windows:
            try:
                self._finish()
            except Exception as exc:  # report, never lose the test outcome
                self.lines.append(f"ERROR: saving/reporting plain-test windows failed: {type(exc).__name__}: {exc}")
        return result

    def _finish(self) -> None:
        from pytest_llenergy.results.windows import format_window_table

        stats = self.statistics()
        self.lines[:0] = format_window_table(stats) + session_of(self.config).thread_lines()
        if self.handled:
            return
        config = self.config
        name = save_name(config, "energy")
        session = session_of(config)
        saved = session.saved
        record = None
        if name or saved is not None or resolve(config, "lem_json"):
            record = self.record(name or "energy")
        if saved is not None and record is not None:
            from pytest_llenergy.results.compare import (
                compare_records,
                format_comparisons,
                parse_rules,
            )

            rules = parse_rules(resolve(config, "lem_compare_fail")) \
                or parse_rules(DEFAULT_RULES)
            self.comparisons = compare_records(saved, record, rules, session.compare_alpha)
            self.lines += format_comparisons(self.comparisons, saved, record)
        if name and record is not None:
            from pytest_llenergy.results.saved import save_run

            self.lines.append(f"saved this run as {save_run(storage_root(config), record)}")
        json_path = resolve(config, "lem_json")
        if json_path and record is not None:
            payload = {"campaign": None, "run_id": record["run_id"], "windows": stats, "verdicts": self.verdicts,
                       "comparisons": [c.__dict__ | {"rule": str(c.rule)} for c in self.comparisons],
                       "environment": {"machine_id": record["machine_id"], "commit": record["commit"]}}
            atomic_write_json(Path(json_path), payload)
            self.lines.append(f"json report: {json_path}")

    def record(self, name: str) -> dict[str, Any]:
        """A saved-run record of the plain windows alone."""
        import datetime as dt

        from pytest_llenergy.energy import collect_environment
        from pytest_llenergy.results.saved import machine_id

        environment = collect_environment(None)
        git = environment.get("git") or {}
        return {"schema_version": 1, "name": name, "campaign": None,
                "run_id": dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S"),
                "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "machine_id": machine_id(environment), "machine": {k: environment.get(k) for k in ("gpu", "cpu", "os")},
                "commit": {"id": git.get("commit"), "dirty": git.get("dirty")}, "experiments": self.experiments()}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.lines:
            return
        terminalreporter.section("llenergy: energy windows")
        for line in self.lines:
            terminalreporter.write_line(line, red=line.startswith("ERROR"))


def save_name(config: pytest.Config, default: str) -> str | None:
    """``--lem-save NAME``, or ``default`` under ``--lem-autosave`` / ``lem_autosave``, else None."""
    name = resolve(config, "lem_save")
    if not name and resolve(config, "lem_autosave"):
        return default
    return name or None


def plain_windows(config: pytest.Config) -> PlainWindows | None:
    """The controller's plain-test windows (``LemSession.plain``); None on workers and in dry runs."""
    plain: PlainWindows | None = session_of(config).plain
    return plain


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Item report: a plain test's windows ride on its call report (to the controller under xdist)."""
    report: pytest.TestReport = yield
    if report.when == "call" and campaign_item(item) is None:
        windows = item.stash.get(WINDOWS, None)
        if windows:
            setattr(report, REPORT_ATTR, [portable(w) for w in windows])
    return report


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str] | None:
    """Plain tests that use ``energy``: the energy source and what its figures are, before any test runs
    (campaign runs print this in their header)."""
    if get_run(config) is not None or not any("energy" in getattr(i, "fixturenames", ()) for i in items):
        return None
    context = session_of(config).measurement()
    source = context.ensure_source()
    lines = [f"llenergy: energy source: {context.reason}"]
    if source.estimated:
        lines.append("llenergy: NOTE: ESTIMATED energy (no hardware counter): treat figures as approximate")
    if source.simulated:
        lines.append("llenergy: NOTE: SIMULATED energy (replayed power trace), not a measurement")
    return lines


def register(session: LemSession) -> None:
    """Configure step (controller): collect plain tests' windows; save, compare and report them at the end."""
    config = session.config
    if not is_worker(config) and not config.option.collectonly:
        plugin = PlainWindows(config)
        session.plain = plugin
        config.pluginmanager.register(plugin, "llenergy-plain-windows")
