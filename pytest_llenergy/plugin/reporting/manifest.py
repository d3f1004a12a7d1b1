"""Controller-side bookkeeping: the run's manifest, updated from every item's reports.

Under xdist, workers' reports (with their ``user_properties``) reach the controller, so the
controller alone writes; without xdist the single process is the controller.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pytest_llenergy.plugin.base import (
    LEM_CONTAINER_PROPERTY,
    LEM_KEY_PROPERTY,
    LEM_RESULT_PROPERTY,
    report_property,
    session_of,
)
from pytest_llenergy.plugin.reporting.session import group_by_setting
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.state import LemRun
from pytest_llenergy.plugin.xdist import is_worker
from pytest_llenergy.results.manifest import ManifestWriter


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class ManifestPlugin:
    """Keeps ``manifest.json`` current: pending, running, passed, failed, skipped, interrupted."""

    def __init__(self, config: pytest.Config, run: LemRun) -> None:
        self.config = config
        self.run = run
        self.writer: ManifestWriter | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Opened after the preflight: a run refused before its first item leaves no manifest."""
        run = self.run
        planned = [(i.experiment.id, i.cycle, i.id) for i in run.items()]
        self.writer = ManifestWriter.open(
            run.run_dir.manifest_path, campaign=run.name, campaign_hash=run.plan.file_hash,
            run_id=run.run_id, seed=run.seed, order=run.order, cycles=run.cycles, planned=planned,
            group_by=group_by_setting(self.config, run), dropped=run.extras.get("dropped_experiments", ()),
            description=run.plan.campaign.description,
        )
        session_of(self.config).manifest = self.writer
        self._reconcile_done()

    def _reconcile_done(self) -> None:
        """Mark passed the items a resumed run found done on disk: a kill -9 can land between
        writing an item's result file and updating its manifest entry."""
        run, writer = self.run, self.writer
        for key in sorted(run.done):
            entry = writer.manifest.entries.get(key) if writer is not None else None
            if writer is None or entry is None or entry.status == "passed":
                continue
            path = run.run_dir.result_path(entry.experiment_id, entry.cycle)
            ended = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).isoformat(timespec="seconds")
            writer.update(key, status="passed", result_path=str(path.relative_to(run.run_dir.path)),
                          error=None, ended_at=ended)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        key = report_property(report, LEM_KEY_PROPERTY)
        if key is None or self.writer is None:
            return
        container = report_property(report, LEM_CONTAINER_PROPERTY)
        if container is not None:  # docker dispatch: image, image id, versions seen inside
            self.writer.update(key, container=container)
        result = report_property(report, LEM_RESULT_PROPERTY)
        if result is not None:
            self.writer.update(key, status=result["status"], result_path=result["path"],
                               error=result["error"], ended_at=_now())
        elif report.when == "setup" and report.passed:
            self.writer.update(key, status="running", started_at=_now(), ended_at=None, error=None)
        elif report.skipped and report.when in ("setup", "call"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.writer.update(key, status="skipped", error=reason, ended_at=_now())

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.writer is not None and self.writer.write_error:
            terminalreporter.write_line(f"llenergy: WARNING: {self.writer.write_error}", red=True)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.writer is None:
            return
        for key in self.writer.running():
            self.writer.update(key, status="interrupted", ended_at=_now(),
                               error="interrupted (Ctrl-C or crash) before the item finished")


def register(session: LemSession) -> None:
    """Configure step (controller, campaign): keep ``manifest.json`` current from every item's reports."""
    config, run = session.config, session.run
    if run is not None and not is_worker(config) and not config.option.collectonly:
        config.pluginmanager.register(ManifestPlugin(config, run), "llenergy-manifest")
