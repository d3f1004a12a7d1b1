"""Container dispatch: preflight checks, then one item at a time through compose (ephemeral or persistent)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pytest_llenergy.dispatch.command import ItemCommand, PathMap
from pytest_llenergy.dispatch.compose import (
    ComposeCommand,
    ComposeProject,
    container_name,
    detect_compose,
    display_path,
)
from pytest_llenergy.dispatch.docker import (
    ImageInfo,
    container_label,
    daemon_version,
    image_info,
    kill_container,
)
from pytest_llenergy.dispatch.envfile import ensure_env_file, ensure_secrets_file, pinned_versions
from pytest_llenergy.dispatch.errors import DispatchError, describe_exit
from pytest_llenergy.dispatch.gpus import GpuRoute
from pytest_llenergy.dispatch.process import Completed, Runner, run_command

Strategy = Literal["ephemeral", "persistent"]


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
    output_tail_lines: int = 60
    extra_env: Mapping[str, str] = field(default_factory=dict)
    plugin_version: str = ""
    docker: str = "docker"
    uid: int = field(default_factory=os.getuid)
    gid: int = field(default_factory=os.getgid)
    cwd: Path | None = None

    @property
    def env_file(self) -> Path:
        return self.compose_file.parent / ".env"

    @property
    def secrets_file(self) -> Path:
        return self.compose_file.parent / "secrets.env"

    @property
    def versions_file(self) -> Path:
        return self.compose_file.parent / "versions.env"

    def service_for(self, backend: str) -> str:
        return self.services.get(backend, backend)


@dataclass
class ServiceInfo:
    service: str
    image: str | None
    info: ImageInfo | None = None
    problem: str | None = None


@dataclass
class Preflight:
    """What the checks found: usable services, and each unusable one's reason."""

    daemon: str | None = None
    compose: ComposeCommand | None = None
    services: dict[str, ServiceInfo] = field(default_factory=dict)
    error: str | None = None
    """A problem that stops every service (no CLI, no daemon, no compose, bad compose file)."""
    notes: list[str] = field(default_factory=list)

    def problem(self, service: str) -> str | None:
        if self.error is not None:
            return self.error
        info = self.services.get(service)
        return info.problem if info is not None else f"service {service!r} was not checked"


@dataclass
class ContainerRun:
    """How one item's container went."""

    service: str
    strategy: Strategy
    image: str | None
    container: str
    argv: list[str]
    returncode: int
    output: str
    duration_s: float
    timed_out: bool = False
    error: str | None = None
    """Why the container could not run the item at all (set instead of a pytest outcome)."""

    def tail(self, lines: int) -> str:
        kept = self.output.rstrip().splitlines()[-lines:]
        return "\n".join(kept)

    def describe(self, pytest_ran: bool = True) -> str:
        if self.timed_out:
            return f"container {self.container} timed out after {self.duration_s:.0f} s and was killed"
        return f"container {self.container}: {describe_exit(self.returncode, pytest_ran=pytest_ran)}"


class ContainerDispatcher:
    """Runs campaign items in compose services; one per process (xdist workers each have one)."""

    def __init__(self, settings: DispatchSettings, runner: Runner = run_command,
                 environ: Mapping[str, str] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.runner = runner
        self.environ = dict(os.environ if environ is None else environ)
        self.log = log or (lambda message: None)
        self.preflight_result: Preflight | None = None
        self.project: ComposeProject | None = None
        self._up: dict[str, tuple[str, str]] = {}  # service -> (NVIDIA_VISIBLE_DEVICES, container label)

    # -- environment -------------------------------------------------------------------------------------------
    def compose_env(self, gpu: GpuRoute | None = None) -> dict[str, str]:
        """The compose client's environment: interpolates the mounts and the GPU reservation."""
        paths = self.settings.paths
        env = dict(self.environ)
        env["LEM_PROJECT_DIR"] = str(Path(paths.host_project).resolve())
        env["LEM_RESULTS_DIR"] = str(Path(paths.host_results).resolve())
        env["LEM_PROJECT_MOUNT"] = paths.container_project
        env["LEM_RESULTS_MOUNT"] = paths.container_results
        if gpu is not None:
            env["NVIDIA_VISIBLE_DEVICES"] = gpu.nvidia_visible_devices
        return env

    # -- preflight ---------------------------------------------------------------------------------------------
    def preflight(self, services: Iterable[str]) -> Preflight:
        """Check docker, compose, the compose file, ``.env`` and each service's image; never raises."""
        result = Preflight()
        self.preflight_result = result
        wanted = sorted(set(services))
        s = self.settings
        env = self.compose_env()
        try:
            result.daemon = daemon_version(self.runner, docker=s.docker, env=env)
            result.compose = detect_compose(self.runner, docker=s.docker, configured=s.compose_command, env=env)
            if not s.compose_file.is_file():
                raise DispatchError(f"compose file {s.compose_file} not found (dispatch.compose_file)")
            done = ensure_env_file(s.env_file, s.uid, s.gid, pinned_versions(
                s.versions_file if s.versions_file.is_file() else None, s.plugin_version))
            if done:
                result.notes.append(f"{done} {display_path(s.env_file, s.cwd)} (PUID={s.uid}, PGID={s.gid})")
            if ensure_secrets_file(s.secrets_file):
                result.notes.append(f"created {display_path(s.secrets_file, s.cwd)} (empty; for HF_TOKEN and other secrets)")
            self.project = ComposeProject(result.compose, s.compose_file, s.project, s.env_file)
            config = self._compose_config(env)
        except DispatchError as exc:
            result.error = str(exc)
            return result
        declared = config.get("services") or {}
        for service in wanted:
            result.services[service] = self._check_service(service, declared, env)
        return result

    def _compose_config(self, env: Mapping[str, str]) -> dict[str, Any]:
        assert self.project is not None
        done = self.runner(self.project.config(), env=env, timeout=60)
        if not done.ok:
            raise DispatchError(f"`{' '.join(self.project.config()[:-1])} config` failed: {done.last_line()}")
        try:
            data = yaml.safe_load(done.stdout) or {}
        except yaml.YAMLError as exc:
            raise DispatchError(f"cannot read the output of compose config: {exc}") from None
        if not isinstance(data, dict):
            raise DispatchError("compose config printed no mapping")
        return data

    def _check_service(self, service: str, declared: Mapping[str, Any], env: Mapping[str, str]) -> ServiceInfo:
        assert self.project is not None
        if service not in declared:
            names = ", ".join(sorted(declared)) or "none"
            return ServiceInfo(service, None, problem=(
                f"compose file {display_path(self.settings.compose_file, self.settings.cwd)} has no service "
                f"{service!r} (it has: {names}); add one, or map the backend in dispatch.services"))
        image = (declared[service] or {}).get("image")
        if not image:
            return ServiceInfo(service, None, problem=f"service {service!r} names no image (add `image:` to it)")
        try:
            info = image_info(image, self.runner, docker=self.settings.docker, env=env)
        except DispatchError as exc:
            return ServiceInfo(service, image, problem=str(exc))
        if info is None:
            return ServiceInfo(service, image, problem=(
                f"image {image} for service {service!r} is not built; build it with:\n    "
                + self.project.build_hint([service], self.settings.cwd)))
        found = ServiceInfo(service, image, info)
        version = info.plugin_version
        if version and self.settings.plugin_version and version != self.settings.plugin_version:
            assert self.preflight_result is not None
            self.preflight_result.notes.append(
                f"image {image} has pytest-llenergy {version}, this host {self.settings.plugin_version}; rebuild with: "
                + self.project.build_hint([service], self.settings.cwd))
        return found

    # -- running items -----------------------------------------------------------------------------------------
    def image_of(self, service: str) -> str | None:
        pre = self.preflight_result
        info = pre.services.get(service) if pre is not None else None
        return info.image if info is not None else None

    def run_item(self, service: str, command: ItemCommand, gpu: GpuRoute, label: str,
                 announce: Callable[[str, str | None, str], None] | None = None) -> ContainerRun:
        """Run one item's pytest in the service's container; never raises for container failures."""
        if self.project is None:
            raise DispatchError("container dispatch used before its preflight")
        env_flags = {**gpu.container_env(), **self.settings.extra_env}
        env = self.compose_env(gpu)
        workdir = self.settings.paths.container_project
        timeout = self.settings.timeout_s
        image = self.image_of(service)
        if self.settings.strategy == "persistent":
            container, error = self._ensure_up(service, gpu, env)
            if announce is not None:
                announce("persistent", image, container)
            if error is not None:
                return ContainerRun(service, "persistent", image, container, [], 0, "", 0.0, error=error)
            argv = self.project.exec(service, command.argv(), env=env_flags, workdir=workdir)
            done = self.runner(argv, env=env, timeout=timeout, merge_output=True)
            if done.timed_out:
                self._restart_after_timeout(service, env)
        else:
            container = container_name(self.settings.project, label[:60], secrets.token_hex(3))
            if announce is not None:
                announce("ephemeral", image, container)
            argv = self.project.run(service, command.argv(), env=env_flags, workdir=workdir, name=container)
            done = self.runner(argv, env=env, timeout=timeout, merge_output=True)
            if done.timed_out:
                kill_container(container, self.runner, docker=self.settings.docker, env=env)
        return self._container_run(service, image, container, done)

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
        return run

    def _ensure_up(self, service: str, gpu: GpuRoute, env: Mapping[str, str]) -> tuple[str, str | None]:
        """Start the service once (again when the item needs other GPUs); (container label, error)."""
        assert self.project is not None
        wanted = gpu.nvidia_visible_devices
        current = self._up.get(service)
        if current is not None and current[0] == wanted:
            return current[1], None
        self.log(f"starting persistent container for service {service} ({gpu.describe()})")
        done = self.runner(self.project.up([service], recreate=current is not None), env=env, timeout=300,
                           merge_output=True)
        if not done.ok:
            tail = "\n".join(done.output.rstrip().splitlines()[-self.settings.output_tail_lines:])
            return f"{self.settings.project}/{service}", (
                f"`compose up -d {service}` failed ({describe_exit(done.returncode, pytest_ran=False)}):\n{tail}")
        ps = self.runner(self.project.ps_quiet(service), env=env, timeout=60)
        ids = ps.stdout.split() if ps.ok else []
        label = (container_label(ids[0], self.runner, docker=self.settings.docker, env=env)
                 if ids else f"{self.settings.project}/{service}")
        self._up[service] = (wanted, label)
        return label, None

    def _restart_after_timeout(self, service: str, env: Mapping[str, str]) -> None:
        """exec's client was killed but the process in the container may still run: recreate it next time."""
        assert self.project is not None
        ps = self.runner(self.project.ps_quiet(service), env=env, timeout=60)
        for container in ps.stdout.split() if ps.ok else []:
            kill_container(container, self.runner, docker=self.settings.docker, env=env)
        self._up.pop(service, None)

    def close(self) -> list[str]:
        """Session end: bring persistent containers down (unless kept); returns lines to show."""
        if self.project is None or not self._up:
            return []
        services = ", ".join(sorted(self._up))
        if self.settings.keep_containers:
            return [f"kept persistent containers ({services}); remove them with: "
                    + self.project.down_hint(self.settings.cwd)]
        done = self.runner(self.project.down(), env=self.compose_env(), timeout=300, merge_output=True)
        self._up.clear()
        if not done.ok:
            return [f"could not bring persistent containers down ({describe_exit(done.returncode, pytest_ran=False)}): "
                    f"{done.last_line()}; run: {self.project.down_hint(self.settings.cwd)}"]
        return [f"brought persistent containers down ({services})"]
