"""The Docker CLI and daemon: is one reachable, is an image there, stopping a container."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field

from pytest_llenergy.dispatch.errors import DispatchError
from pytest_llenergy.dispatch.process import Runner, run_command

VERSION_LABEL = "org.llenergy.version"
"""Image label holding the pytest-llenergy version installed in the image."""
CUDA_LABEL = "org.llenergy.cuda"
"""Image label holding the CUDA version an image's engine was built for (when the base image has no CUDA_VERSION)."""
PROJECT_LABEL = "com.docker.compose.project"
"""Label compose puts on every container of a project (``run`` and ``up`` alike)."""


def docker_host(env: Mapping[str, str]) -> str:
    return env.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"


def daemon_version(runner: Runner = run_command, *, docker: str = "docker", env: Mapping[str, str] | None = None) -> str:
    """The daemon's version; DispatchError saying why when there is no CLI or no reachable daemon."""
    env = env if env is not None else {}
    if runner is run_command and shutil.which(docker, path=env.get("PATH")) is None:
        raise DispatchError(f"docker CLI not found on PATH ({docker!r}); install Docker (docs/docker.md)")
    result = runner([docker, "version", "--format", "{{.Server.Version}}"], env=env or None, timeout=30)
    if result.missing:
        raise DispatchError(f"docker CLI not found on PATH ({docker!r}); install Docker (docs/docker.md)")
    version = result.stdout.strip()
    if result.timed_out:
        raise DispatchError(f"Docker daemon at {docker_host(env)} did not answer within 30 s")
    if not result.ok or not version:
        raise DispatchError(
            f"Docker daemon not reachable at {docker_host(env)}: {result.last_line()} "
            "(start the daemon, or point DOCKER_HOST at a running one)"
        )
    return version


@dataclass(frozen=True)
class ImageInfo:
    image: str
    id: str
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    user: str = ""

    @property
    def plugin_version(self) -> str | None:
        return self.labels.get(VERSION_LABEL)

    @property
    def cuda_version(self) -> str | None:
        """The CUDA version the image was built for: ``CUDA_VERSION`` (NVIDIA's images), the
        ``org.llenergy.cuda`` label (ours), or ``cuda>=X.Y`` in ``NVIDIA_REQUIRE_CUDA``."""
        found = self.env.get("CUDA_VERSION") or self.labels.get(CUDA_LABEL)
        if found:
            return found
        match = re.search(r"cuda>=(\d+(?:\.\d+)*)", self.env.get("NVIDIA_REQUIRE_CUDA", ""))
        return match.group(1) if match else None


def image_info(
    image: str, runner: Runner = run_command, *, docker: str = "docker", env: Mapping[str, str] | None = None
) -> ImageInfo | None:
    """The local image's id, labels, environment and user; None when it is not there (never pulls)."""
    result = runner([docker, "image", "inspect", "--format", "{{json .}}", image], env=env, timeout=30)
    if not result.ok:
        text = result.output.lower()
        if "no such image" in text or "no such object" in text:
            return None
        raise DispatchError(f"cannot inspect image {image}: {result.last_line()}")
    try:
        data = json.loads(result.stdout.strip().splitlines()[0])
    except (ValueError, IndexError):
        raise DispatchError(f"cannot read `docker image inspect {image}`: {result.stdout[:200]!r}") from None
    config = data.get("Config") or {}
    pairs = (item.partition("=") for item in config.get("Env") or [])
    return ImageInfo(image, str(data.get("Id", "")),
                     {str(k): str(v) for k, v in (config.get("Labels") or {}).items()},
                     {k: v for k, _, v in pairs}, str(config.get("User") or ""))


@dataclass(frozen=True)
class DaemonInfo:
    """What ``docker info`` says about GPU support."""

    runtimes: tuple[str, ...] = ()
    default_runtime: str = ""
    cdi_devices: tuple[str, ...] = ()

    @property
    def nvidia(self) -> bool:
        """An NVIDIA runtime, or CDI devices of NVIDIA GPUs, is configured."""
        return "nvidia" in self.runtimes or any(d.startswith("nvidia.com/gpu") for d in self.cdi_devices)

    def describe(self) -> str:
        cdi = ", ".join(self.cdi_devices) or "none"
        return f"runtimes: {', '.join(self.runtimes) or 'none'}; CDI devices: {cdi}"


def daemon_info(runner: Runner = run_command, *, docker: str = "docker",
                env: Mapping[str, str] | None = None) -> DaemonInfo:
    result = runner([docker, "info", "--format", "{{json .}}"], env=env, timeout=30)
    try:
        data = json.loads(result.stdout.strip().splitlines()[0]) if result.ok else {}
    except (ValueError, IndexError):
        data = {}
    devices = [str(d.get("ID", "")) for d in data.get("DiscoveredDevices") or [] if isinstance(d, dict)]
    return DaemonInfo(tuple(sorted(data.get("Runtimes") or {})), str(data.get("DefaultRuntime") or ""),
                      tuple(d for d in devices if d))


def project_containers(project: str, runner: Runner = run_command, *, docker: str = "docker",
                       env: Mapping[str, str] | None = None) -> list[str]:
    """Ids of every container (running or not) of compose project ``project``."""
    result = runner([docker, "ps", "-a", "-q", "--filter", f"label={PROJECT_LABEL}={project}"], env=env, timeout=30)
    return result.stdout.split() if result.ok else []


def remove_containers(ids: list[str], runner: Runner = run_command, *, docker: str = "docker",
                      env: Mapping[str, str] | None = None) -> bool:
    """Stop and remove containers at once (SIGKILL: an interrupted item is lost anyway)."""
    if not ids:
        return True
    return runner([docker, "rm", "-f", *ids], env=env, timeout=60).ok


def container_image_id(container: str, runner: Runner = run_command, *, docker: str = "docker",
                       env: Mapping[str, str] | None = None) -> str | None:
    result = runner([docker, "inspect", "--format", "{{.Image}}", container], env=env, timeout=30)
    return result.stdout.strip() or None if result.ok else None


def kill_container(name: str, runner: Runner = run_command, *, docker: str = "docker",
                   env: Mapping[str, str] | None = None) -> bool:
    """Kill and remove a container by name or id (after a timeout); True when it was there."""
    killed = runner([docker, "kill", name], env=env, timeout=30)
    runner([docker, "rm", "-f", name], env=env, timeout=30)
    return killed.ok


def container_label(container_id: str, runner: Runner = run_command, *, docker: str = "docker",
                    env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """A container's name (its short id when unknown) and ``name (short id)``, for verbose output."""
    result = runner([docker, "inspect", "--format", "{{.Name}}", container_id], env=env, timeout=30)
    name = result.stdout.strip().lstrip("/") if result.ok else ""
    return (name, f"{name} ({container_id[:12]})") if name else (container_id[:12], container_id[:12])
