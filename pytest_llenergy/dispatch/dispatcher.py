"""Container dispatch: preflight checks, then one item at a time through compose (ephemeral or persistent)."""

from __future__ import annotations

import os
import secrets
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pytest_llenergy.config.base import default_of
from pytest_llenergy.config.dispatch import DispatchConfig
from pytest_llenergy.dispatch.command import ItemCommand, PathMap
from pytest_llenergy.dispatch.compose import (
    ComposeProject,
    container_name,
    detect_compose,
    display_path,
    env_flags,
)
from pytest_llenergy.dispatch.docker import (
    DaemonInfo,
    container_image_id,
    container_label,
    daemon_info,
    daemon_version,
    image_info,
    kill_container,
    project_containers,
    remove_containers,
)
from pytest_llenergy.dispatch.envfile import ensure_git_ignored, ensure_secrets_file, read_env_file
from pytest_llenergy.dispatch.errors import DispatchError, describe_exit, explain_output
from pytest_llenergy.dispatch.files import build_context_problem
from pytest_llenergy.dispatch.gpus import GpuRoute
from pytest_llenergy.dispatch.outcome import ContainerRun, Strategy
from pytest_llenergy.dispatch.owners import labels, sweep_orphans, write_label_file
from pytest_llenergy.dispatch.preflight import (
    Preflight,
    ServiceInfo,
    driver_problem,
    gpu_runtime_problem,
    host_driver_version,
    prepare_writable,
    readable_problem,
    wants_gpu,
)
from pytest_llenergy.dispatch.process import Completed, Runner, run_command
from pytest_llenergy.dispatch.worker import Worker


@dataclass
class DispatchSettings:
    """Everything the dispatcher needs, resolved by the plugin from options, ini and the campaign."""

    compose_file: Path
    project: str
    paths: PathMap
    strategy: Strategy = "ephemeral"
    keep_containers: bool = False
    services: Mapping[str, str] = field(default_factory=dict)
    compose_command: Sequence[str] | None = None
    timeout_s: float | None = None
    output_tail_lines: int = default_of(DispatchConfig, "output_tail_lines")
    extra_env: Mapping[str, str] = field(default_factory=dict)
    plugin_version: str = ""
    docker: str = "docker"
    uid: int = field(default_factory=os.getuid)
    """The user the containers run as (PUID/PGID in the compose file): see ``preflight.container_user``."""
    gid: int = field(default_factory=os.getgid)
    cwd: Path | None = None
    run_dir: Path | None = None
    """The run directory the containers write into: made writable for (or checked against) uid:gid."""
    secrets_path: Path | None = None
    """The secrets file (HF_TOKEN ...); default: ``secrets.env`` beside the compose file."""

    @property
    def env_file(self) -> Path | None:
        """The compose file's committed ``.env`` (pinned versions), when there is one."""
        path = self.compose_file.parent / ".env"
        return path if path.is_file() else None

    @property
    def secrets_file(self) -> Path:
        return self.secrets_path if self.secrets_path is not None else self.compose_file.parent / "secrets.env"

    @property
    def build_file(self) -> Path | None:
        path = self.compose_file.parent / "compose.build.yaml"
        return path if path.is_file() else None

    def service_for(self, backend: str) -> str:
        return self.services.get(backend, backend)


class ContainerDispatcher:
    """Runs campaign items in compose services; one per process (xdist workers each have one)."""

    def __init__(self, settings: DispatchSettings, runner: Runner = run_command,
                 environ: Mapping[str, str] | None = None,
                 log: Callable[[str], None] | None = None,
                 worker_factory: Callable[[list[str], Mapping[str, str]], Worker] = Worker) -> None:
        self.settings = settings
        self.worker_factory = worker_factory
        self.runner = runner
        self.environ = dict(os.environ if environ is None else environ)
        self.log = log or (lambda message: None)
        self.preflight_result: Preflight | None = None
        self.project: ComposeProject | None = None
        self._up: dict[str, tuple[str, str, str]] = {}  # service -> (NVIDIA_VISIBLE_DEVICES, label, container id)
        self._names: dict[str, str] = {}  # service -> name of its persistent container
        self._workers: dict[str, Worker] = {}
        self._image_ids: dict[str, str] = {}  # service -> id of the image its container runs
        self._secrets: dict[str, str] = read_env_file(settings.secrets_file)
        self.closed = False

    # -- environment -------------------------------------------------------------------------------------------
    def compose_env(self, gpu: GpuRoute | None = None) -> dict[str, str]:
        """The compose client's environment: interpolates the mounts, the user, the GPU reservation, secrets."""
        paths, s = self.settings.paths, self.settings
        env = dict(self.environ)
        env.update(self._secrets)
        env["LEM_PROJECT_DIR"] = str(Path(paths.host_project).resolve())
        env["LEM_RESULTS_DIR"] = str(Path(paths.host_results).resolve())
        env["LEM_PROJECT_MOUNT"] = paths.container_project
        env["LEM_RESULTS_MOUNT"] = paths.container_results
        env["PUID"], env["PGID"] = str(s.uid), str(s.gid)
        if gpu is not None:
            env["NVIDIA_VISIBLE_DEVICES"] = gpu.nvidia_visible_devices
        return env

    def container_env(self, service: str, gpu: GpuRoute, *, image_id: str | None = None,
                      container: str | None = None) -> dict[str, str | None]:
        """``-e`` variables of an item: GPUs, the campaign's env, provenance, secrets (by name only).

        The container's name is passed (not read from HOSTNAME inside: under ``network_mode: host`` that
        is the host's name), and the id of the image the item runs on."""
        provenance = {"LEM_CONTAINER_SERVICE": service, "LEM_CONTAINER_STRATEGY": self.settings.strategy,
                      "LEM_CONTAINER_IMAGE": self.image_of(service),
                      "LEM_CONTAINER_IMAGE_ID": image_id or self.image_id(service),
                      "LEM_CONTAINER_NAME": container or self._names.get(service)}
        env: dict[str, str | None] = {**gpu.container_env(), **self.settings.extra_env}
        env.update({k: v for k, v in provenance.items() if v})
        env.update({key: None for key in self._secrets})
        return env

    # -- preflight ---------------------------------------------------------------------------------------------
    def preflight(self, services: Iterable[str]) -> Preflight:
        """Check docker, compose, the compose file, each service's image and GPU support, and that the
        containers' user may read the project and write the results: every problem it can see, one line
        each (the host's own checks even without a daemon); never raises. Removes containers that
        earlier, dead runs of this project left."""
        result = Preflight()
        self.preflight_result = result
        try:
            self._check_docker(services, result)
        except DispatchError as exc:
            result.errors.append(str(exc))
        s = self.settings
        if s.uid == 0:
            result.notes.append("containers run as root (dispatch.user is 0:0)")
        problem = readable_problem(s.paths.host_project, s.uid, s.gid)
        if problem:
            result.errors.append(problem)
        if s.run_dir is not None:
            problem = prepare_writable(s.run_dir, s.uid, s.gid)
            if problem:
                result.errors.append(problem)
        return result

    def _check_docker(self, services: Iterable[str], result: Preflight) -> None:
        s = self.settings
        env = self.compose_env()
        result.daemon = daemon_version(self.runner, docker=s.docker, env=env)
        result.compose = detect_compose(self.runner, docker=s.docker, configured=s.compose_command, env=env)
        if not s.compose_file.is_file():
            raise DispatchError(f"compose file {s.compose_file} not found (dispatch.compose_file)")
        self._secrets_file(result)
        self.project = ComposeProject(result.compose, s.compose_file, s.project, s.env_file, s.build_file)
        config = self._compose_config(env)
        declared = config.get("services") or {}
        if declared:
            keep = s.keep_containers and s.strategy == "persistent"
            label_file = write_label_file(declared, labels(s.paths.host_project, keep))
            weakref.finalize(self, label_file.unlink, True)  # removed by close(), else when this object goes
            self.project = replace(self.project, label_file=label_file)
        result.notes += sweep_orphans(s.paths.host_project, self.runner, docker=s.docker, env=env).lines()
        self._create_external_volumes(config, env, result)
        gpu_check: dict[str, Any] = {}
        for service in sorted(set(services)):
            result.services[service] = self._check_service(service, declared, env, gpu_check)

    def _secrets_file(self, result: Preflight) -> None:
        """Create the (empty) secrets file when missing, and keep it out of git (beside a compose file of one's own)."""
        s = self.settings
        own_folder = s.secrets_path is not None
        shown = display_path(s.secrets_file, s.cwd)
        try:
            if ensure_secrets_file(s.secrets_file, own_folder=own_folder):
                result.notes.append(f"created {shown} (empty; for HF_TOKEN and other secrets)")
            if not own_folder and ensure_git_ignored(s.secrets_file):
                result.notes.append(f"added {s.secrets_file.name} to {display_path(s.secrets_file.parent / '.gitignore', s.cwd)}"
                                    " (secrets are never committed)")
        except OSError as exc:
            result.notes.append(f"cannot create {shown} or list it in the .gitignore beside it ({exc.strerror or exc}): "
                                "containers get no secrets from it; never commit it")

    def _compose_config(self, env: Mapping[str, str]) -> dict[str, Any]:
        assert self.project is not None
        done = self.runner(self.project.config(), env=env, timeout=60)
        if not done.ok:
            hint = explain_output(done.output)
            raise DispatchError(f"`{' '.join(self.project.config()[:-1])} config` failed: {done.last_line()}"
                                + (f" ({hint})" if hint else ""))
        try:
            data = yaml.safe_load(done.stdout) or {}
        except yaml.YAMLError as exc:
            raise DispatchError(f"cannot read the output of compose config: {exc}") from None
        if not isinstance(data, dict):
            raise DispatchError("compose config printed no mapping")
        return data

    def _create_external_volumes(self, config: Mapping[str, Any], env: Mapping[str, str], result: Preflight) -> None:
        """Named volumes shared by every run (the model cache) are ``external``: created once, here."""
        for key, volume in (config.get("volumes") or {}).items():
            external = (volume or {}).get("external")
            if not external:
                continue
            name = (volume or {}).get("name") or (external.get("name") if isinstance(external, dict) else None) or key
            if self.runner([self.settings.docker, "volume", "inspect", name], env=env, timeout=30).ok:
                continue
            done = self.runner([self.settings.docker, "volume", "create", name], env=env, timeout=30)
            if done.ok:
                result.notes.append(f"created volume {name} (kept between runs; remove it with: docker volume rm {name})")
            else:
                result.errors.append(f"cannot create volume {name}: {done.last_line()}")

    def _context_note(self) -> str:
        build_file = self.settings.build_file
        problem = build_context_problem(build_file, self.environ) if build_file is not None else None
        return f" ({problem})" if problem else ""

    def _check_service(self, service: str, declared: Mapping[str, Any], env: Mapping[str, str],
                       gpu_check: dict[str, Any]) -> ServiceInfo:
        assert self.project is not None
        if service not in declared:
            names = ", ".join(sorted(declared)) or "none"
            return ServiceInfo(service, None, problems=[
                f"compose file {display_path(self.settings.compose_file, self.settings.cwd)} has no service "
                f"{service!r} (it has: {names}); add one, or map the backend in dispatch.services"])
        config = declared[service] or {}
        image = config.get("image")
        if not image:
            return ServiceInfo(service, None, problems=[f"service {service!r} names no image (add `image:` to it)"])
        try:
            info = image_info(image, self.runner, docker=self.settings.docker, env=env)
        except DispatchError as exc:
            return ServiceInfo(service, image, problems=[str(exc)])
        found = ServiceInfo(service, image, info)
        if info is None:
            found.problems.append(
                f"image {image} for service {service!r} is not on this machine (dispatch never pulls or builds); "
                "build it with: " + self.project.build_hint([service], self.settings.cwd) + self._context_note())
        elif info.plugin_version and self.settings.plugin_version and info.plugin_version != self.settings.plugin_version:
            assert self.preflight_result is not None
            self.preflight_result.notes.append(
                f"image {image} has pytest-llenergy {info.plugin_version}, this host {self.settings.plugin_version}; "
                "rebuild with: " + self.project.build_hint([service], self.settings.cwd))
        if wants_gpu(config):
            if "daemon" not in gpu_check:
                gpu_check["daemon"] = daemon_info(self.runner, docker=self.settings.docker, env=env)
                gpu_check["driver"] = host_driver_version(self.runner, env)
            daemon: DaemonInfo = gpu_check["daemon"]
            problem = gpu_runtime_problem(service, daemon) or (
                driver_problem(service, info, gpu_check["driver"]) if info is not None else None)
            if problem:
                found.problems.append(problem)
        return found

    # -- running items -----------------------------------------------------------------------------------------
    def image_id(self, service: str) -> str | None:
        """The id of the image the service's container runs (the running container's, else the preflight's)."""
        pre = self.preflight_result
        info = pre.services.get(service) if pre is not None else None
        return self._image_ids.get(service) or (info.info.id if info is not None and info.info is not None else None)

    def image_of(self, service: str) -> str | None:
        pre = self.preflight_result
        info = pre.services.get(service) if pre is not None else None
        return info.image if info is not None else None

    def run_item(self, service: str, command: ItemCommand, gpu: GpuRoute, label: str,
                 announce: Callable[[str, str | None, str], None] | None = None,
                 serve: Sequence[str] = (), next_nodeid: str | None = None) -> ContainerRun:
        """Run one item's pytest in the service's container; never raises for container failures.

        ``serve``: with the persistent strategy, every node id this process sends to the service (its
        worker collects them once and keeps the model loaded between items).
        """
        if self.project is None:
            raise DispatchError("container dispatch used before its preflight")
        env = self.compose_env(gpu)
        image = self.image_of(service)
        if self.settings.strategy == "persistent":
            label, error = self._ensure_up(service, gpu, env)
            if announce is not None:
                announce("persistent", image, label)
            container = self._names.get(service, label)
            if error is not None:
                return ContainerRun(service, "persistent", image, container, [], 0, "", 0.0, error=error)
            return self._run_in_worker(service, command, gpu, env, container, list(serve) or [command.nodeid],
                                       next_nodeid)
        container = container_name(self.settings.project, label[:60], secrets.token_hex(3))
        if announce is not None:
            announce("ephemeral", image, container)
        return self._run_ephemeral(service, command, gpu, env, image, container)

    def _run_ephemeral(self, service: str, command: ItemCommand, gpu: GpuRoute, env: Mapping[str, str],
                       image: str | None, container: str) -> ContainerRun:
        """A container for this item alone; the image is looked up again just before (the image a tag names
        may change between items) and the id recorded is that of the container that ran it."""
        assert self.project is not None
        docker = self.settings.docker
        info = image_info(image, self.runner, docker=docker, env=env) if image is not None else None
        if image is not None and info is None:
            return ContainerRun(service, "ephemeral", image, container, [], 0, "", 0.0, error=(
                f"image {image} is gone (removed after the preflight); dispatch never pulls or builds: "
                + self.project.build_hint([service], self.settings.cwd)))
        expected = info.id if info is not None else self.image_id(service)
        argv = self.project.run(service, command.argv(), env=self.container_env(service, gpu, image_id=expected,
                                                                                container=container),
                                workdir=self.settings.paths.container_project, name=container)
        try:
            done = self.runner(argv, env=env, timeout=self.settings.timeout_s, merge_output=True)
        except BaseException:  # Ctrl-C, SIGTERM: the container must not run on without us
            kill_container(container, self.runner, docker=docker, env=env)
            raise
        if done.timed_out:
            kill_container(container, self.runner, docker=docker, env=env)
        ran = container_image_id(container, self.runner, docker=docker, env=env)
        remove_containers([container], self.runner, docker=docker, env=env)
        run = self._container_run(service, image, container, done)
        run.image_id = ran or expected
        return run

    def _container_run(self, service: str, image: str | None, container: str, done: Completed) -> ContainerRun:
        output = done.output
        if self.project is not None and self.project.compose.major == 1 and done.returncode:
            # docker-compose v1 prints the exit status as a last line of its own
            lines = output.rstrip().splitlines()
            if lines and lines[-1].strip() == str(done.returncode):
                output = "\n".join(lines[:-1]) + "\n"
        run = ContainerRun(service, self.settings.strategy, image, container, list(done.argv), done.returncode,
                           output, done.duration_s, done.timed_out)
        if done.missing:
            run.error = f"{done.argv[0]} not found: {done.last_line()}"
        elif done.returncode:
            run.hint = explain_output(output)
        return run

    def _run_in_worker(self, service: str, command: ItemCommand, gpu: GpuRoute, env: Mapping[str, str],
                       container: str, serve: list[str], next_nodeid: str | None) -> ContainerRun:
        """Persistent: hand the item to the service's long-lived worker (started on first use)."""
        worker = self._workers.get(service)
        if worker is None or not worker.alive:
            container_id = self._up[service][2]
            argv = [self.settings.docker, "exec", "-i", "-w", self.settings.paths.container_project,
                    *env_flags(self.container_env(service, gpu)), container_id, *command.serve_argv(serve)]
            worker = self._workers[service] = self.worker_factory(argv, env)
        timeout = self.settings.timeout_s
        deadline = None if timeout is None else time.monotonic() + timeout
        mark, started = worker.mark(), time.perf_counter()
        request = {"nodeid": command.nodeid, "report": command.report_path, "gap": command.gap, "next": next_nodeid}
        timed_out, reply = False, None
        try:
            if worker.wait_ready(deadline) is not None:
                reply = worker.request(request, deadline)
        except TimeoutError:
            timed_out = True
        except BaseException:
            worker.kill()
            raise
        code = 0 if reply is not None and not reply.get("failed") else 1
        if timed_out:
            self._restart_after_timeout(service, env)
            code = 137
        elif reply is None:  # the worker ended: its exit status says why
            self._workers.pop(service, None)
            code = worker.exit_status()
        output = worker.output_since(mark)
        done = Completed(tuple(worker.argv), code, output, "", time.perf_counter() - started, timed_out)
        run = self._container_run(service, self.image_of(service), container, done)
        run.image_id = self._image_ids.get(service)
        return run

    def _ensure_up(self, service: str, gpu: GpuRoute, env: Mapping[str, str]) -> tuple[str, str | None]:
        """Start the service once (again when the item needs other GPUs); (container label, error)."""
        assert self.project is not None
        wanted = gpu.nvidia_visible_devices
        current = self._up.get(service)
        if current is not None and current[0] == wanted:
            return current[1], None
        self._stop_worker(service)
        self._names.pop(service, None)
        self.log(f"starting persistent container for service {service} ({gpu.describe()})")
        done = self.runner(self.project.up([service], recreate=current is not None), env=env, timeout=300,
                           merge_output=True)
        ps = self.runner(self.project.ps_quiet(service), env=env, timeout=60)
        ids = ps.stdout.split() if ps.ok else []
        if not done.ok or not ids:
            tail = "\n".join(done.output.rstrip().splitlines()[-self.settings.output_tail_lines:])
            hint = explain_output(done.output)
            return f"{self.settings.project}/{service}", (
                f"`compose up -d {service}` failed ({describe_exit(done.returncode, pytest_ran=False)})"
                + (f": {hint}" if hint else "") + f":\n{tail}")
        name, label = container_label(ids[0], self.runner, docker=self.settings.docker, env=env)
        self._up[service] = (wanted, label, ids[0])
        self._names[service] = name
        image_id = container_image_id(ids[0], self.runner, docker=self.settings.docker, env=env)
        if image_id:
            self._image_ids[service] = image_id
        return label, None

    def _stop_worker(self, service: str, *, kill: bool = False) -> None:
        worker = self._workers.pop(service, None)
        if worker is not None:
            if kill:
                worker.kill()
            worker.close(timeout=5 if kill else 60)

    def _restart_after_timeout(self, service: str, env: Mapping[str, str]) -> None:
        """The worker (or exec) may still run in the container: kill the container, start afresh next time."""
        assert self.project is not None
        self._stop_worker(service, kill=True)
        ps = self.runner(self.project.ps_quiet(service), env=env, timeout=60)
        for container in ps.stdout.split() if ps.ok else []:
            kill_container(container, self.runner, docker=self.settings.docker, env=env)
        self._up.pop(service, None)

    @property
    def running_services(self) -> list[str]:
        return sorted(self._up)

    def close(self, interrupted: bool = False) -> list[str]:
        """Session end: stop workers, bring persistent containers down (unless kept and not interrupted),
        and remove every other container of this run's compose project. Returns lines to show."""
        if self.project is None or self.closed:
            return []
        self.closed = True
        try:
            return self._stop_all(interrupted)
        finally:
            if self.project.label_file is not None:
                self.project.label_file.unlink(missing_ok=True)

    def _stop_all(self, interrupted: bool) -> list[str]:
        assert self.project is not None
        lines: list[str] = []
        for service in list(self._workers):
            self._stop_worker(service, kill=interrupted)
        env = self.compose_env()
        services = ", ".join(sorted(self._up))
        if self._up and self.settings.keep_containers and not interrupted:
            return [f"kept persistent containers ({services}); remove them with: "
                    + self.project.down_hint(self.settings.cwd)]
        if self._up:
            done = self.runner(self.project.down(timeout_s=0 if interrupted else 10), env=env, timeout=300,
                               merge_output=True)
            self._up.clear()
            lines.append(f"brought persistent containers down ({services})" if done.ok else
                         f"could not bring persistent containers down ({describe_exit(done.returncode, pytest_ran=False)}): "
                         f"{done.last_line()}; run: {self.project.down_hint(self.settings.cwd)}")
        left = project_containers(self.settings.project, self.runner, docker=self.settings.docker, env=env)
        if left:
            removed = remove_containers(left, self.runner, docker=self.settings.docker, env=env)
            lines.append(f"removed {len(left)} container(s) of {self.settings.project} still there"
                         + ("" if removed else f" (failed: run docker rm -f {' '.join(left)})"))
        return lines
