"""Container dispatch, the pytest side: options, routing, preflight, and ``pytest_lem_dispatch``.

The host (controller or xdist worker) keeps ordering, thermal gaps and baselines; for an item
routed to docker it runs ``pytest <node id>`` in the backend's compose service with the same
campaign, run id, seed, cycles and results directory, then logs setup/call/teardown reports
built from what the container reported (``--lem-dispatch-report``), with the same ``lem_key`` /
``lem_result`` user properties as a local item, ``lem_result`` read from the result file the
container wrote into the host's run directory.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..dispatch import (
    ContainerDispatcher,
    ContainerRun,
    DispatchError,
    DispatchSettings,
    ItemCommand,
    PathMap,
    forwarded_options,
    project_name,
    route_gpus,
)
from ..results.schema import result_key
from ..results.store import atomic_write_json, load_result_file
from .collection import campaign_item
from .options import setting
from .recorder import ItemRecorder
from .runtest import LEM_KEY_PROPERTY, LEM_RESULT_PROPERTY
from .state import CampaignItem, LemRun, get_run

MODES = ("local", "docker", "auto")
STRATEGIES = ("ephemeral", "persistent")
LEM_CONTAINER_PROPERTY = "lem_container"
REPORT_SCHEMA = 1
DISPATCH_PLUGIN = "llenergy-dispatch"
_PREVIOUS = pytest.StashKey[pytest.Item]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llenergy", "LLM energy measurement (pytest-llenergy)")
    group.addoption("--lem-dispatch", dest="lem_dispatch", default=None, choices=MODES,
                    help="Where campaign items run: local (this process), docker (each backend's compose service), "
                         "auto (local when the backend imports, else docker, else skip). Overrides the campaign's "
                         "dispatch.mode. Ini: lem_dispatch.")
    parser.addini("lem_dispatch", "Where campaign items run: local, docker or auto.", type="string", default=None)
    group.addoption("--lem-container-strategy", dest="lem_container_strategy", default=None, choices=STRATEGIES,
                    help="ephemeral: `compose run --rm` per item; persistent: `compose up -d` once per service and "
                         "`exec` per item. Overrides dispatch.strategy. Ini: lem_container_strategy.")
    parser.addini("lem_container_strategy", "Container strategy: ephemeral or persistent.", type="string", default=None)
    group.addoption("--lem-keep-containers", dest="lem_keep_containers", action="store_true", default=False,
                    help="Leave persistent containers running at session end. Ini: lem_keep_containers.")
    parser.addini("lem_keep_containers", "Leave persistent containers running at session end.", type="bool", default=False)
    group.addoption("--lem-dispatch-report", dest="lem_dispatch_report", default=None, metavar="PATH",
                    help="Internal (set by the dispatching host): write this run's item reports to PATH as JSON.")
    group.addoption("--lem-dispatch-gap", dest="lem_dispatch_gap", default=None, metavar="JSON",
                    help="Internal (set by the dispatching host): the thermal gap the host waited before this item.")


# -- settings ----------------------------------------------------------------------------------------------------
def _dispatch_section(run: LemRun | None) -> Any:
    from ..config.dispatch import DispatchConfig

    section = getattr(run.plan.campaign, "dispatch", None) if run is not None else None
    return section if section is not None else DispatchConfig()


def dispatch_mode(config: pytest.Config, run: LemRun | None) -> str:
    """``--lem-dispatch``, else ``lem_dispatch``, else the campaign's ``dispatch.mode``; local when dispatched."""
    if config.getoption("lem_dispatched", False):
        return "local"
    value = setting(config, "lem_dispatch") or _dispatch_section(run).mode
    if value not in MODES:
        raise pytest.UsageError(f"llenergy: lem_dispatch: expected local, docker or auto, got {value!r}")
    return value


def container_strategy(config: pytest.Config, run: LemRun | None) -> str:
    value = setting(config, "lem_container_strategy") or _dispatch_section(run).strategy
    if value not in STRATEGIES:
        raise pytest.UsageError(f"llenergy: lem_container_strategy: expected ephemeral or persistent, got {value!r}")
    return value


def keep_containers(config: pytest.Config, run: LemRun | None) -> bool:
    if config.getoption("lem_keep_containers", False):
        return True
    try:
        if config.getini("lem_keep_containers"):
            return True
    except ValueError:
        pass
    return bool(_dispatch_section(run).keep_containers)


def campaign_path(config: pytest.Config) -> Path | None:
    """The campaign file on the host, resolved as ``create_run`` resolves it."""
    raw = setting(config, "lem_campaign")
    if not raw:
        return None
    path = Path(raw)
    if not path.is_absolute():
        base = Path(config.invocation_params.dir)
        path = base / path if (base / path).exists() else config.rootpath / path
    return path.resolve()


def _worker_id(config: pytest.Config) -> str:
    worker = getattr(config, "workerinput", None)
    return str(worker.get("workerid", "")) if isinstance(worker, dict) else ""


def build_settings(config: pytest.Config, run: LemRun) -> DispatchSettings:
    from .. import __version__

    section = _dispatch_section(run)
    compose_file = Path(section.compose_file)
    if not compose_file.is_absolute():
        compose_file = config.rootpath / compose_file
    return DispatchSettings(
        compose_file=compose_file,
        project=project_name("lem", run.run_id, _worker_id(config)),
        paths=PathMap(config.rootpath, section.project_dir, run.results_root, section.results_dir),
        strategy=container_strategy(config, run),  # type: ignore[arg-type]
        keep_containers=keep_containers(config, run),
        services=dict(section.services),
        compose_command=section.compose_command,
        timeout_s=section.timeout_s,
        output_tail_lines=section.output_tail_lines,
        extra_env=dict(section.env),
        plugin_version=__version__,
        cwd=Path(config.invocation_params.dir),
    )


# -- output ------------------------------------------------------------------------------------------------------
def _write_line(config: pytest.Config, message: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < 0:
        return
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"llenergy: {message}")
    else:
        reporter.write_line(f"llenergy: {message}")


def _keywords(item: pytest.Item) -> dict[str, int]:
    return {name: 1 for name in item.keywords}


def _report(item: pytest.Item, when: str, outcome: str, longrepr: Any = None, *, duration: float = 0.0,
            start: float | None = None, properties: list[tuple[str, Any]] | None = None) -> pytest.TestReport:
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


@dataclass(frozen=True)
class Route:
    kind: str  # "docker" or "skip"
    service: str = ""
    reason: str = ""


# -- host side ---------------------------------------------------------------------------------------------------
class DockerDispatch:
    """Registered when the mode is docker or auto: routes items, checks docker before the campaign, runs items."""

    def __init__(self, config: pytest.Config, run: LemRun, mode: str) -> None:
        self.config, self.run, self.mode = config, run, mode
        self.routes: dict[str, Route] = {}
        self.dispatcher: ContainerDispatcher | None = None
        self.settings: DispatchSettings | None = None
        self.container_campaign: str | None = None
        self.lines: list[str] = []
        self._local: dict[str, tuple[bool, str]] = {}

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        strategy = container_strategy(config, self.run)
        section = _dispatch_section(self.run)
        keep = ", kept at session end" if strategy == "persistent" and keep_containers(config, self.run) else ""
        return [f"llenergy: dispatch {self.mode}, container strategy {strategy}{keep}, compose file {section.compose_file}"]

    def local_backend(self, backend: str) -> tuple[bool, str]:
        if backend not in self._local:
            from ..backends.base import BackendNotFound, get_backend

            try:
                self._local[backend] = get_backend(backend).available()
            except BackendNotFound as exc:
                self._local[backend] = (False, str(exc))
            except Exception as exc:  # a broken third-party backend: treat as unavailable here
                self._local[backend] = (False, f"{type(exc).__name__}: {exc}")
        return self._local[backend]

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.config.option.collectonly or not session.items:
            return
        settings = build_settings(self.config, self.run)
        candidates: list[tuple[pytest.Item, str, str]] = []  # (item, service, why not local)
        for item in session.items:
            citem = campaign_item(item)
            if citem is None:
                continue
            backend = citem.config.backend
            why = ""
            if self.mode == "auto":
                ok, why = self.local_backend(backend)
                if ok:
                    continue
            candidates.append((item, settings.service_for(backend), why))
        if not candidates:
            return
        self.settings = settings
        self.dispatcher = ContainerDispatcher(settings, log=lambda message: _write_line(self.config, message))
        pre = self.dispatcher.preflight({service for _, service, _ in candidates})
        if pre.error is None:
            path = campaign_path(self.config)
            try:
                self.container_campaign = settings.paths.to_container(path) if path else None
            except DispatchError as exc:
                pre.error = f"campaign file: {exc}"
        self.lines += [f"docker: {note}" for note in pre.notes]
        services = sorted({service for _, service, _ in candidates})
        if self.mode == "docker":
            problems = [pre.error] if pre.error else [p for s in services if (p := pre.problem(s))]
            if problems:
                raise pytest.UsageError("llenergy: docker dispatch cannot start:\n  " + "\n  ".join(problems))
        counts: dict[str, int] = {}
        for item, service, why in candidates:
            problem = pre.problem(service)
            if problem is None:
                self.routes[item.nodeid] = Route("docker", service)
                counts[service] = counts.get(service, 0) + 1
            else:
                local = f"not importable here ({why})" if why else "not run here"
                backend = campaign_item(item).config.backend  # type: ignore[union-attr]
                self.routes[item.nodeid] = Route("skip", reason=f"backend {backend!r} {local}, and its container "
                                                               f"cannot run: {problem}")
        if counts:
            assert pre.compose is not None
            per = ", ".join(f"{n} in {s} ({self.dispatcher.image_of(s)})" for s, n in sorted(counts.items()))
            self.lines.append(f"docker dispatch ({settings.strategy}) via {pre.compose.label}, "
                              f"daemon {pre.daemon}: {per}")
        skipped = sum(route.kind == "skip" for route in self.routes.values())
        if skipped:
            self.lines.append(f"docker dispatch: {skipped} items will be skipped (backend neither here nor in a container)")

    def pytest_report_collectionfinish(self, config: pytest.Config) -> list[str] | None:
        return [f"llenergy: {line}" for line in self.lines] or None

    def pytest_lem_dispatch(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        route = self.routes.get(item.nodeid)
        if route is None:
            return None
        if route.kind == "skip":
            self._log_skip(item, route.reason)
        else:
            self._run_in_container(item, route.service)
        _teardown_towards(item, nextitem)
        return True

    def _log_skip(self, item: pytest.Item, reason: str) -> None:
        citem = campaign_item(item)
        assert citem is not None
        props = [(LEM_KEY_PROPERTY, result_key(citem.experiment.id, citem.cycle))]
        lineno = (item.location[1] or 0) + 1
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        for report in (_report(item, "setup", "skipped", (str(item.path), lineno, f"Skipped: {reason}"), properties=props),
                       _report(item, "teardown", "passed", properties=props)):
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)

    def _thermal_gap(self, item: pytest.Item) -> dict[str, Any] | None:
        """The host waits (gaps stay on the host); the container is told what was waited."""
        try:
            from .gaps import PREVIOUS
        except ImportError:
            PREVIOUS = _PREVIOUS
        previous = item.config.stash.get(PREVIOUS, None)
        gap = item.ihook.pytest_lem_thermal_gap(item=item, previous=previous)
        item.config.stash[PREVIOUS] = item
        return gap

    def _command(self, item: pytest.Item, citem: CampaignItem, report_path: Path, gap: dict | None) -> ItemCommand:
        assert self.settings is not None and self.container_campaign is not None
        run, paths = self.run, self.settings.paths
        section = _dispatch_section(run)
        return ItemCommand(
            nodeid=item.nodeid,
            campaign=self.container_campaign,
            run_id=run.run_id,
            seed=run.seed,
            seed_drawn=run.seed_drawn,
            cycles=max(run.cycles, citem.cycles_total, citem.cycle),
            order=run.order,
            results_dir=paths.container_results,
            report_path=paths.to_container(report_path),
            gap=gap,
            forwarded=tuple(forwarded_options(vars(self.config.option))),
            overrides=tuple(getattr(self.config.option, "override_ini", None) or ()),
            pytest=tuple(section.pytest_command),
        )

    def _run_in_container(self, item: pytest.Item, service: str) -> None:
        assert self.dispatcher is not None and self.settings is not None
        citem = campaign_item(item)
        assert citem is not None
        run = self.run
        key = result_key(citem.experiment.id, citem.cycle)
        started = time.time()
        logged_start = False

        def start(strategy: str, image: str | None, container: str) -> None:
            nonlocal logged_start
            if self.config.get_verbosity() > 0:
                _write_line(self.config, f"{citem.id}: docker {strategy}, service {service}, image {image}, "
                                         f"container {container}")
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            logged_start = True

        report_path = run.run_dir.path / ".dispatch" / f"{key}.json"
        crun: ContainerRun | None = None
        payload: dict[str, Any] | None = None
        try:
            gap = self._thermal_gap(item)
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.unlink(missing_ok=True)
            command = self._command(item, citem, report_path, gap)
            gpu = route_gpus(os.environ.get("CUDA_VISIBLE_DEVICES"))
            crun = self.dispatcher.run_item(service, command, gpu, citem.id, announce=start)
            payload = _read_payload(report_path)
            failure = crun.error
        except DispatchError as exc:
            failure = str(exc)
        except Exception as exc:  # the thermal gap or anything else before the container: the item errors
            failure = f"before the container started: {type(exc).__name__}: {exc}"
        finally:
            report_path.unlink(missing_ok=True)
            try:
                report_path.parent.rmdir()
            except OSError:
                pass
        if not logged_start:
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        reports = self._reports(item, citem, service, crun, payload, failure, started)
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)

    # -- reports from the container's outcome --------------------------------------------------------------------
    def _reports(self, item: pytest.Item, citem: CampaignItem, service: str, crun: ContainerRun | None,
                 payload: dict[str, Any] | None, failure: str | None, started: float) -> list[pytest.TestReport]:
        key = result_key(citem.experiment.id, citem.cycle)
        tail_lines = self.settings.output_tail_lines if self.settings else 60
        tail = crun.tail(tail_lines) if crun is not None else ""
        title = f"container output (last {tail_lines} lines)"
        reports = [] if failure else self._container_reports(item, payload)
        container_info = {
            "service": service, "strategy": crun.strategy if crun else None, "image": crun.image if crun else None,
            "container": crun.container if crun else None, "exit_status": crun.returncode if crun else None,
            "duration_s": round(crun.duration_s, 3) if crun else None,
        }
        if not reports:
            return self._failure_reports(item, citem, crun, payload, failure, started, container_info, tail, title)
        for report in reports:
            props = [tuple(p) for p in report.user_properties if p[0] not in (LEM_KEY_PROPERTY, LEM_RESULT_PROPERTY)]
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
        if crun.timed_out or crun.returncode not in (0, 1):
            teardown = next((r for r in reports if r.when == "teardown"), None)
            if teardown is None:
                teardown = _report(item, "teardown", "passed", properties=[(LEM_KEY_PROPERTY, key)])
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
            lines.append("the container's pytest wrote no report (did it start? is pytest-llenergy installed in the image?)")
        message = "\n".join(lines)
        if tail:
            message += f"\n\n{'-' * 8} {title} {'-' * 8}\n{tail}"
        props: list[tuple[str, Any]] = [(LEM_KEY_PROPERTY, key)]
        info, _ = self._host_result(citem, started)
        if info is None:
            info = self._write_failed_result(item, citem, message.splitlines()[0])
        if info is not None:
            props.append((LEM_RESULT_PROPERTY, info))
        props.append((LEM_CONTAINER_PROPERTY, container_info))
        duration = crun.duration_s if crun else 0.0
        return [_report(item, "setup", "failed", message, duration=duration, start=started, properties=props),
                _report(item, "teardown", "passed", properties=[(LEM_KEY_PROPERTY, key)])]

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

    def _write_failed_result(self, item: pytest.Item, citem: CampaignItem, error: str) -> dict[str, Any] | None:
        try:
            result = ItemRecorder(self.run, citem, item.nodeid).build("failed", error)
            path = self.run.run_dir.write_result(result)
        except Exception:
            return None
        item.config.hook.pytest_lem_result(config=item.config, result=result)
        return {"path": str(path.relative_to(self.run.run_dir.path)), "status": "failed", "error": result.error}

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.dispatcher is not None:
            for line in self.dispatcher.close():
                _write_line(self.config, f"docker: {line}")


def _read_payload(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == REPORT_SCHEMA else None


def _teardown_towards(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Finish fixtures a previous local item left for this one, as ``runtestprotocol`` would."""
    state = getattr(item.session, "_setupstate", None)
    if state is not None and getattr(state, "stack", None):
        try:
            state.teardown_exact(nextitem)
        except Exception:
            pass


# -- container side ----------------------------------------------------------------------------------------------
class ContainerSide:
    """Inside the container (``--lem-dispatched``): report back to the host and take the host's gap."""

    def __init__(self, config: pytest.Config, report_path: str | None, gap: dict[str, Any] | None) -> None:
        self.config, self.report_path, self.gap = config, report_path, gap
        self.reports: list[dict[str, Any]] = []
        self.collect_errors: list[str] = []
        self.collected = 0

    @pytest.hookimpl(tryfirst=True)
    def pytest_lem_thermal_gap(self, item: pytest.Item, previous: pytest.Item | None) -> dict[str, Any] | None:
        return dict(self.gap) if self.gap is not None else None

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: {report.longreprtext[-3000:]}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.report_path:
            self.reports.append(self.config.hook.pytest_report_to_serializable(config=self.config, report=report))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.report_path:
            return
        payload = {"schema": REPORT_SCHEMA, "exitstatus": int(exitstatus), "collected": self.collected,
                   "collect_errors": self.collect_errors, "reports": self.reports}
        atomic_write_json(Path(self.report_path), payload)


# -- hooks -------------------------------------------------------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("lem_dispatched", False):
        path = config.getoption("lem_dispatch_report", None)
        raw_gap = config.getoption("lem_dispatch_gap", None)
        try:
            gap = json.loads(raw_gap) if raw_gap else None
        except ValueError:
            raise pytest.UsageError(f"--lem-dispatch-gap: not JSON: {raw_gap!r}") from None
        if path or gap is not None:
            config.pluginmanager.register(ContainerSide(config, path, gap), "llenergy-dispatch-container")
        return
    run = get_run(config)
    if run is None:
        return
    mode = dispatch_mode(config, run)
    container_strategy(config, run)
    if mode != "local":
        config.pluginmanager.register(DockerDispatch(config, run, mode), DISPATCH_PLUGIN)


@pytest.hookimpl(trylast=True)
def pytest_lem_dispatch(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """The default: run the item here (None); ``DockerDispatch`` answers first for items it routes."""
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if campaign_item(item) is None or item.config.getoption("lem_dispatched", False):
        return None
    if item.ihook.pytest_lem_dispatch(item=item, nextitem=nextitem):
        return True
    return None
