"""The Docker CLI and daemon: is one reachable, is an image there, stopping a container."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field

from pytest_llenergy.dispatch.errors import DispatchError
from pytest_llenergy.dispatch.process import Runner, run_command

VERSION_LABEL = "org.llenergy.version"
"""Image label holding the pytest-llenergy version installed in the image."""


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

    @property
    def plugin_version(self) -> str | None:
        return self.labels.get(VERSION_LABEL)


def image_info(
    image: str, runner: Runner = run_command, *, docker: str = "docker", env: Mapping[str, str] | None = None
) -> ImageInfo | None:
    """The local image's id and labels; None when it is not there (never pulls)."""
    result = runner([docker, "image", "inspect", "--format", "{{json .Id}} {{json .Config.Labels}}", image],
                    env=env, timeout=30)
    if not result.ok:
        text = result.output.lower()
        if "no such image" in text or "no such object" in text:
            return None
        raise DispatchError(f"cannot inspect image {image}: {result.last_line()}")
    first = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
    image_id, _, labels_json = first.partition(" ")
    try:
        labels = json.loads(labels_json) or {}
        image_id = json.loads(image_id)
    except ValueError:
        labels = {}
    return ImageInfo(image, str(image_id), {str(k): str(v) for k, v in labels.items()})


def kill_container(name: str, runner: Runner = run_command, *, docker: str = "docker",
                   env: Mapping[str, str] | None = None) -> bool:
    """Kill and remove a container by name or id (after a timeout); True when it was there."""
    killed = runner([docker, "kill", name], env=env, timeout=30)
    runner([docker, "rm", "-f", name], env=env, timeout=30)
    return killed.ok


def container_label(container_id: str, runner: Runner = run_command, *, docker: str = "docker",
                    env: Mapping[str, str] | None = None) -> str:
    """``name (short id)`` of a container, for verbose output."""
    result = runner([docker, "inspect", "--format", "{{.Name}}", container_id], env=env, timeout=30)
    name = result.stdout.strip().lstrip("/") if result.ok else ""
    return f"{name} ({container_id[:12]})" if name else container_id[:12]
