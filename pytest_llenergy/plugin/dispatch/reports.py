"""The report round trip of a dispatched item: the container writes its reports, the host rebuilds them.

Inside the container :class:`ContainerSide` serialises the item's reports to the file named by
``--lem-dispatch-report``; on the host :class:`HostReports` (mixed into ``DockerDispatch``) turns
that file, or the container's failure, into setup/call/teardown reports with the ``lem_key`` /
``lem_result`` / ``lem_container`` user properties, checking the result file the container wrote.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.config.base import default_of
from pytest_llenergy.config.dispatch import DispatchConfig
from pytest_llenergy.dispatch import ContainerRun, DispatchSettings
from pytest_llenergy.plugin.base import (
    LEM_CONTAINER_PROPERTY,
    LEM_KEY_PROPERTY,
    LEM_RESULT_PROPERTY,
)
from pytest_llenergy.plugin.recorder import ItemRecorder
from pytest_llenergy.plugin.state import CampaignItem, LemRun
from pytest_llenergy.results.schema import ContainerProvenance, ExperimentResult, result_key
from pytest_llenergy.results.store import atomic_write_bytes, atomic_write_json, load_result_file

REPORT_SCHEMA = 1


def _keywords(item: pytest.Item) -> dict[str, int]:
    return {name: 1 for name in item.keywords}


def item_report(item: pytest.Item, when: str, outcome: str, longrepr: Any = None, *, duration: float = 0.0,
                start: float | None = None, properties: list[tuple[str, Any]] | None = None) -> pytest.TestReport:
    """A report for ``item`` made on the host (not run here: rebuilt or synthesised)."""
    start = time.time() if start is None else start
    return pytest.TestReport(
        nodeid=item.nodeid, location=item.location, keywords=_keywords(item), outcome=outcome,  # type: ignore[arg-type]
        longrepr=longrepr, when=when, sections=[], duration=duration, start=start, stop=start + duration,  # type: ignore[arg-type]
        user_properties=list(properties or []),
    )


def _append_text(report: pytest.TestReport, title: str, text: str) -> None:
    """Add ``text`` under ``title`` to a failed report's longrepr (so it shows in the failure)."""
    longrepr = report.longrepr
    if hasattr(longrepr, "addsection"):
        longrepr.addsection(title, text)  # type: ignore[union-attr]
    elif isinstance(longrepr, tuple):
        return
    else:
        report.longrepr = f"{longrepr or ''}\n\n{'-' * 8} {title} {'-' * 8}\n{text}".lstrip("\n")


def read_payload(path: Path) -> dict[str, Any] | None:
    """The report file a container wrote, or None when missing, unreadable or of another schema."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == REPORT_SCHEMA else None


# -- host side ---------------------------------------------------------------------------------------------------
class HostReports:
    """Host side: pytest reports for a dispatched item from what its container reported (a mixin)."""

    config: pytest.Config
    run: LemRun
    settings: DispatchSettings | None

    def _reports(self, item: pytest.Item, citem: CampaignItem, service: str, crun: ContainerRun | None,
                 payload: dict[str, Any] | None, failure: str | None, started: float) -> list[pytest.TestReport]:
        key = result_key(citem.experiment.id, citem.cycle)
        tail_lines = self.settings.output_tail_lines if self.settings else default_of(DispatchConfig, "output_tail_lines")
        tail = crun.tail(tail_lines) if crun is not None else ""
        title = f"container output (last {tail_lines} lines)"
        reports = [] if failure else self._container_reports(item, payload)
        container_info = self._container_info(citem, service, crun, started)
        if not reports:
            return self._failure_reports(item, citem, crun, payload, failure, started, container_info, tail, title)
        for report in reports:
            props: list[tuple[str, object]] = [(str(p[0]), p[1]) for p in report.user_properties
                                               if p[0] not in (LEM_KEY_PROPERTY, LEM_RESULT_PROPERTY)]
            props.insert(0, (LEM_KEY_PROPERTY, key))
            had_result = any(p[0] == LEM_RESULT_PROPERTY for p in report.user_properties)
            if had_result:
                info, problem = self._host_result(citem, started)
                if info is not None:
                    props.append((LEM_RESULT_PROPERTY, info))
                else:
                    report.outcome = "failed"
                    report.longrepr = (
                        f"the container wrote the result of {citem.id}, but the host cannot use it: {problem}; "
                        f"check that dispatch.results_dir ({self.settings.paths.container_results if self.settings else '?'}) "
                        "is mounted from LEM_RESULTS_DIR in the compose file")
            report.user_properties = props
            report.nodeid, report.location = item.nodeid, item.location
        last = next((r for r in reports if r.when == "call"), reports[0])
        last.user_properties.append((LEM_CONTAINER_PROPERTY, container_info))
        assert crun is not None
        teardown = next((r for r in reports if r.when == "teardown"), None)
        if teardown is not None and teardown is not last:  # JUnit XML keeps the teardown report's properties
            teardown.user_properties.append((LEM_CONTAINER_PROPERTY, container_info))
        if crun.timed_out or crun.returncode not in (0, 1):
            teardown = next((r for r in reports if r.when == "teardown"), None)
            if teardown is None:
                teardown = item_report(item, "teardown", "passed", properties=[(LEM_KEY_PROPERTY, key)])
                reports.append(teardown)
            if not any(r.failed for r in reports):
                teardown.outcome = "failed"
                teardown.longrepr = f"{crun.describe()} after the item's reports"
        for report in reports:
            if report.failed and tail:
                _append_text(report, title, tail)
        return reports

    def _container_reports(self, item: pytest.Item, payload: dict[str, Any] | None) -> list[pytest.TestReport]:
        if not payload:
            return []
        reports = []
        for data in payload.get("reports") or []:
            try:
                report = self.config.hook.pytest_report_from_serializable(config=self.config, data=data)
            except Exception:
                report = None
            if isinstance(report, pytest.TestReport) and report.nodeid == item.nodeid:
                if report.skipped and isinstance(report.longrepr, list):  # JSON made the (path, line, reason) a list
                    report.longrepr = tuple(report.longrepr)
                reports.append(report)
        return reports

    def _failure_reports(self, item: pytest.Item, citem: CampaignItem, crun: ContainerRun | None,
                         payload: dict[str, Any] | None, failure: str | None, started: float,
                         container_info: dict[str, Any], tail: str, title: str) -> list[pytest.TestReport]:
        """No report came back: the item errors in setup, with why, and a failed result unless the container wrote one."""
        key = result_key(citem.experiment.id, citem.cycle)
        lines = [f"{citem.id} could not run in docker service {container_info['service']!r}: "
                 + (failure or (crun.describe(pytest_ran=payload is not None) if crun else "unknown failure"))]
        if payload is not None:
            if payload.get("collect_errors"):
                lines.append("collection errors in the container:\n" + "\n".join(payload["collect_errors"]))
            elif not payload.get("collected"):
                lines.append(f"the container's pytest did not collect {item.nodeid}: does the container see the same "
                             "project and campaign (dispatch.project_dir, the compose file's mounts)?")
        elif crun is not None and not crun.error:
            lines.append(crun.hint or "the container's pytest wrote no report (did it start? is pytest-llenergy "
                                      "installed in the image?)")
        message = "\n".join(lines)
        if tail:
            message += f"\n\n{'-' * 8} {title} {'-' * 8}\n{tail}"
        props: list[tuple[str, Any]] = [(LEM_KEY_PROPERTY, key)]
        info, _ = self._host_result(citem, started)
        if info is None:
            info = self._write_failed_result(item, citem, message.splitlines()[0], container_info)
        if info is not None:
            props.append((LEM_RESULT_PROPERTY, info))
        props.append((LEM_CONTAINER_PROPERTY, container_info))
        duration = crun.duration_s if crun else 0.0
        return [item_report(item, "setup", "failed", message, duration=duration, start=started, properties=props),
                item_report(item, "teardown", "passed",
                            properties=[(LEM_KEY_PROPERTY, key), (LEM_CONTAINER_PROPERTY, container_info)])]

    def _container_info(self, citem: CampaignItem, service: str, crun: ContainerRun | None,
                        started: float) -> dict[str, Any]:
        """The ``lem_container`` property: where the item ran (the host knows: the container that ran it, and
        its image's id from ``docker inspect``), and what the container saw (from its result)."""
        image_id = crun.image_id if crun is not None else None
        dispatcher = getattr(self, "dispatcher", None)
        if image_id is None and dispatcher is not None:
            image_id = dispatcher.image_id(service)
        path = self.run.run_dir.result_path(citem.experiment.id, citem.cycle)
        result = load_result_file(path)
        seen = result.container if result is not None and result.container is not None else None
        if seen is not None and crun is not None and self._host_result(citem, started)[0] is not None:
            _correct_provenance(path, result, image_id, crun.container)  # type: ignore[arg-type]
        return {
            "service": service, "strategy": crun.strategy if crun else None, "image": crun.image if crun else None,
            "image_id": image_id or (seen.image_id if seen else None),
            "container": crun.container if crun else None, "exit_status": crun.returncode if crun else None,
            "duration_s": round(crun.duration_s, 3) if crun else None,
            "versions": dict(seen.versions) if seen else {},
        }

    def _host_result(self, citem: CampaignItem, started: float) -> tuple[dict[str, Any] | None, str | None]:
        """The result file the container wrote into the host's run directory, checked for ids and freshness."""
        run = self.run
        path = run.run_dir.result_path(citem.experiment.id, citem.cycle)
        result = load_result_file(path)
        if result is None:
            return None, f"no valid result file at {path}"
        if result.run_id != run.run_id or result.item_id != citem.id:
            return None, (f"{path} holds run {result.run_id} item {result.item_id}, "
                          f"expected run {run.run_id} item {citem.id}")
        if path.stat().st_mtime < started - 2:
            return None, f"{path} was not written by this dispatch (older than the container)"
        return {"path": str(path.relative_to(run.run_dir.path)), "status": result.status, "error": result.error}, None

    def _write_failed_result(self, item: pytest.Item, citem: CampaignItem, error: str,
                             container_info: dict[str, Any] | None = None) -> dict[str, Any] | None:
        try:
            result = ItemRecorder(self.run, citem, item.nodeid).build("failed", error)
            info = container_info or {}
            result.container = ContainerProvenance(image=info.get("image"), image_id=info.get("image_id"),
                                                   service=info.get("service"), strategy=info.get("strategy"),
                                                   container=info.get("container"))
            path = self.run.run_dir.write_result(result)
        except Exception:
            return None
        item.config.hook.pytest_lem_result(config=item.config, result=result)
        return {"path": str(path.relative_to(self.run.run_dir.path)), "status": "failed", "error": result.error}


def _correct_provenance(path: Path, result: ExperimentResult, image_id: str | None, container: str) -> None:
    """The container wrote what it was told; the host, which inspected the container that ran the item,
    has the last word on its name and image id (the file keeps its owner)."""
    seen = result.container
    assert seen is not None
    fixed = {"image_id": image_id or seen.image_id, "container": container or seen.container}
    if fixed == {"image_id": seen.image_id, "container": seen.container}:
        return
    result.container = seen.model_copy(update=fixed)
    try:
        owner = path.stat()
        atomic_write_bytes(path, (result.model_dump_json(indent=2) + "\n").encode())
        if os.getuid() == 0:
            os.chown(path, owner.st_uid, owner.st_gid)
    except OSError:
        pass  # the host cannot rewrite it: the manifest and the report properties still say


# -- container side ----------------------------------------------------------------------------------------------
class ContainerSide:
    """Inside the container (``--lem-dispatched``): report back to the host and take the host's gap."""

    def __init__(self, config: pytest.Config, report_path: str | None, gap: dict[str, Any] | None,
                 serving: bool = False) -> None:
        self.config, self.report_path, self.gap, self.serving = config, report_path, gap, serving
        self.reports: list[dict[str, Any]] = []
        self.collect_errors: list[str] = []
        self.collected = 0
        self.failed = False

    def begin(self, report_path: str | None, gap: dict[str, Any] | None) -> None:
        """Serving (persistent worker): the next item reports to ``report_path`` and took ``gap``."""
        self.report_path, self.gap, self.reports, self.failed = report_path, gap, [], False

    def finish(self, collected: int) -> bool:
        """Serving: write the item's report file; whether the item failed."""
        self._write(1 if self.failed else 0, collected)
        return self.failed

    @pytest.hookimpl(tryfirst=True)
    def pytest_lem_thermal_gap(self, item: pytest.Item, previous: pytest.Item | None) -> dict[str, Any] | None:
        return dict(self.gap) if self.gap is not None else None

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: {report.longreprtext[-3000:]}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.failed = self.failed or report.failed
        if self.report_path:
            self.reports.append(self.config.hook.pytest_report_to_serializable(config=self.config, report=report))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.serving:
            self._write(int(exitstatus), self.collected)

    def _write(self, exitstatus: int, collected: int) -> None:
        if not self.report_path:
            return
        payload = {"schema": REPORT_SCHEMA, "exitstatus": exitstatus, "collected": collected,
                   "collect_errors": self.collect_errors, "reports": self.reports}
        atomic_write_json(Path(self.report_path), payload)
