"""The host side of docker dispatch: route items, check docker before the campaign, run items in containers.

``DockerDispatch`` is registered by ``plugin/dispatch/hooks.py`` when the mode is docker or auto; the
reports it logs for a dispatched item are rebuilt in :mod:`.dispatch_reports`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.dispatch import (
    ContainerDispatcher,
    ContainerRun,
    DispatchError,
    DispatchSettings,
    ItemCommand,
    forwarded_options,
    route_gpus,
)
from pytest_llenergy.dispatch.compose import display_path
from pytest_llenergy.dispatch.signals import StopOnSignals
from pytest_llenergy.plugin.base import (
    LEM_KEY_PROPERTY,
    campaign_item,
    output_problems,
    session_of,
    status_line,
)
from pytest_llenergy.plugin.dispatch.reports import HostReports, item_report, read_payload
from pytest_llenergy.plugin.dispatch.settings import (
    build_settings,
    campaign_path,
    compose_file,
    container_strategy,
    dispatch_section,
    keep_containers,
)
from pytest_llenergy.plugin.state import CampaignItem, LemRun
from pytest_llenergy.results.schema import result_key


@dataclass(frozen=True)
class Route:
    kind: str  # "docker" or "skip"
    service: str = ""
    reason: str = ""


class DockerDispatch(HostReports):
    """Registered when the mode is docker or auto: routes items, checks docker before the campaign, runs items."""

    def __init__(self, config: pytest.Config, run: LemRun, mode: str) -> None:
        self.config, self.run, self.mode = config, run, mode
        self.routes: dict[str, Route] = {}
        self.dispatcher: ContainerDispatcher | None = None
        self.settings: DispatchSettings | None = None
        self.container_campaign: str | None = None
        self.lines: list[str] = []
        self._local: dict[str, tuple[bool, str]] = {}
        self.service_nodeids: dict[str, list[str]] = {}  # the node ids each service runs, in run order
        self.signals = StopOnSignals(self._held_notice)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        strategy = container_strategy(config, self.run)
        keep = ", kept at session end" if strategy == "persistent" and keep_containers(config, self.run) else ""
        compose = display_path(compose_file(config, dispatch_section(self.run)), Path(config.invocation_params.dir))
        return [f"llenergy: dispatch {self.mode}, container strategy {strategy}{keep}, compose file {compose}"]

    def local_backend(self, backend: str) -> tuple[bool, str]:
        if backend not in self._local:
            from pytest_llenergy.backends.base import BackendNotFound, get_backend

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
        run_dir_problem = self._make_run_dirs(settings)
        self.dispatcher = ContainerDispatcher(settings, log=lambda message: status_line(self.config, message))
        pre = self.dispatcher.preflight({service for _, service, _ in candidates})
        if run_dir_problem:
            pre.errors.append(run_dir_problem)
        if pre.error is None:
            path = campaign_path(self.config)
            try:
                self.container_campaign = settings.paths.to_container(path) if path else None
            except DispatchError as exc:
                pre.errors.append(f"campaign file: {exc}")
        self.lines += [f"docker: {note}" for note in pre.notes]
        services = sorted({service for _, service, _ in candidates})
        if self.mode == "docker":
            problems = pre.problems(services)
            if problems:  # reported by the run's preflight (plugin/collection/preflight.py) with its own
                session_of(self.config).docker_problems = problems
                return
        counts: dict[str, int] = {}
        for item, service, why in candidates:
            problem = pre.problem(service)
            if problem is None:
                self.routes[item.nodeid] = Route("docker", service)
                self.service_nodeids.setdefault(service, []).append(item.nodeid)
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
            self.signals.install()
        skipped = sum(route.kind == "skip" for route in self.routes.values())
        if skipped:
            self.lines.append(f"docker dispatch: {skipped} items will be skipped (backend neither here nor in a container)")

    def _make_run_dirs(self, settings: DispatchSettings) -> str | None:
        """The run's directories the containers write into (handed to their user by the preflight).

        When the results directory is not writable the run's preflight says so (once): the containers'
        part is then left out of the docker preflight; a run directory that cannot be made is a problem."""
        if output_problems(self.config, measured=False):
            settings.run_dir = None
            return None
        try:
            for directory in (self.run.run_dir.experiments_dir, self._reports_dir()):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            settings.run_dir = None
            return f"results directory: cannot create {exc.filename} ({exc.strerror or exc})"
        return None

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
        for report in (item_report(item, "setup", "skipped", (str(item.path), lineno, f"Skipped: {reason}"), properties=props),
                       item_report(item, "teardown", "passed", properties=props)):
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)

    def _thermal_gap(self, item: pytest.Item) -> dict[str, Any] | None:
        """The host waits (gaps stay on the host); the container is told what was waited."""
        session = session_of(item.config)
        gap = item.ihook.pytest_lem_thermal_gap(item=item, previous=session.previous_item)
        session.previous_item = item
        return gap

    def _command(self, item: pytest.Item, citem: CampaignItem, report_path: Path, gap: dict | None) -> ItemCommand:
        assert self.settings is not None and self.container_campaign is not None
        run, paths = self.run, self.settings.paths
        section = dispatch_section(run)
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
            cache=self.config.pluginmanager.get_plugin("cacheprovider") is not None,
        )

    def _next_in_service(self, service: str, nodeid: str) -> str | None:
        """The item this service's worker runs after ``nodeid`` (so it keeps shared fixtures)."""
        ids = self.service_nodeids.get(service, [])
        try:
            return ids[ids.index(nodeid) + 1]
        except (ValueError, IndexError):
            return None

    def _run_in_container(self, item: pytest.Item, service: str) -> None:
        assert self.dispatcher is not None and self.settings is not None
        citem = campaign_item(item)
        assert citem is not None
        key = result_key(citem.experiment.id, citem.cycle)
        started = time.time()
        logged_start = False

        def start(strategy: str, image: str | None, container: str) -> None:
            nonlocal logged_start
            if self.config.get_verbosity() > 0:
                status_line(self.config, f"{citem.id}: docker {strategy}, service {service}, image {image}, "
                                         f"container {container}")
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            logged_start = True

        report_path = self._reports_dir() / f"{key}.json"
        crun: ContainerRun | None = None
        payload: dict[str, Any] | None = None
        try:
            gap = self._thermal_gap(item)
            report_path.unlink(missing_ok=True)
            command = self._command(item, citem, report_path, gap)
            gpu = route_gpus(os.environ.get("CUDA_VISIBLE_DEVICES"))
            crun = self.dispatcher.run_item(service, command, gpu, citem.id, announce=start,
                                            serve=self.service_nodeids.get(service, ()),
                                            next_nodeid=self._next_in_service(service, item.nodeid))
            payload = read_payload(report_path)
            failure = crun.error
        except DispatchError as exc:
            failure = str(exc)
        except Exception as exc:  # the thermal gap or anything else before the container: the item errors
            failure = f"before the container started: {type(exc).__name__}: {exc}"
        finally:
            report_path.unlink(missing_ok=True)
        if not logged_start:
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        reports = self._reports(item, citem, service, crun, payload, failure, started)
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._close(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._close(interrupted=True)  # a crash before sessionfinish: nothing may keep running
        self.signals.restore()

    def _reports_dir(self) -> Path:
        """Where containers leave their reports for the host (removed at the end when empty)."""
        return self.run.run_dir.dispatch_dir

    def _close(self, interrupted: bool) -> None:
        """Stop every container this process started (persistent ones are kept only after a normal end);
        Ctrl-C, SIGTERM and SIGHUP are held off meanwhile, and a closed terminal does not stop it."""
        if self.dispatcher is None or self.dispatcher.closed:
            return
        with self.signals.holding():
            lines = self.dispatcher.close(interrupted=interrupted)
            try:
                self._reports_dir().rmdir()
            except OSError:
                pass
            for line in lines:
                try:
                    status_line(self.config, f"docker: {line}")
                except OSError:  # the terminal is gone (SIGHUP)
                    pass

    def _held_notice(self) -> None:
        """One line when a signal comes while the containers are being stopped."""
        running = self.dispatcher is not None and not self.dispatcher.closed
        what = "stopping this run's containers" if running else "stopping"
        sys.stderr.write(f"\nllenergy: {what}; please wait, this is not interrupted again\n")
        sys.stderr.flush()


def _teardown_towards(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Finish fixtures a previous local item left for this one, as ``runtestprotocol`` would."""
    state = getattr(item.session, "_setupstate", None)
    if state is not None and getattr(state, "stack", None):
        try:
            state.teardown_exact(nextitem)
        except Exception:
            pass
