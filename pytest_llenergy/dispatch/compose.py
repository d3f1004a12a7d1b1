"""Docker Compose: finding it (v2 ``docker compose``, else v1 ``docker-compose``) and building its commands.

Only flags that both v1 (1.29) and v2 understand are used, so the same code drives either.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_llenergy.dispatch.errors import DispatchError
from pytest_llenergy.dispatch.process import Runner, run_command

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class ComposeCommand:
    """How compose is invoked here, and which version it is."""

    argv: tuple[str, ...]
    version: str

    @property
    def major(self) -> int:
        match = _VERSION.search(self.version)
        return int(match.group(1)) if match else 0

    @property
    def label(self) -> str:
        return f"{' '.join(self.argv)} v{self.version.lstrip('v')}"


def _probe(runner: Runner, argv: Sequence[str], env: Mapping[str, str] | None) -> tuple[ComposeCommand | None, str]:
    result = runner([*argv, "version", "--short"], env=env, timeout=30)
    if result.ok:
        text = result.stdout.strip()
        match = _VERSION.search(text)
        if match:
            return ComposeCommand(tuple(argv), match.group(0).lstrip("v")), ""
        return None, f"`{' '.join(argv)} version --short` printed {text!r}"
    return None, f"`{' '.join(argv)}`: {result.last_line()}"


def detect_compose(
    runner: Runner = run_command,
    *,
    docker: str = "docker",
    configured: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> ComposeCommand:
    """``configured`` when given; else ``docker compose`` (v2) when it works; else ``docker-compose`` (v1)."""
    if configured:
        found, why = _probe(runner, configured, env)
        if found is None:
            raise DispatchError(f"compose command {shlex.join(configured)} (dispatch.compose_command) does not work: {why}")
        return found
    reasons = []
    for argv in ((docker, "compose"), ("docker-compose",)):
        found, why = _probe(runner, argv, env)
        if found is not None:
            return found
        reasons.append(why)
    raise DispatchError(
        "Docker Compose not found: neither `docker compose` (v2) nor `docker-compose` (v1) works ("
        + "; ".join(reasons)
        + "). Install the compose plugin (e.g. apt-get install docker-compose-plugin) or docker-compose."
    )


def env_flags(env: Mapping[str, str | None]) -> list[str]:
    """``-e KEY=VALUE`` flags; ``-e KEY`` for a None value (taken from the client's environment, so a
    secret never appears on a command line)."""
    flags: list[str] = []
    for key, value in env.items():
        flags += ["-e", key if value is None else f"{key}={value}"]
    return flags


def display_path(path: Path, cwd: Path | None = None) -> str:
    """``path`` relative to ``cwd`` when it is inside it, else absolute (for messages)."""
    cwd = Path(cwd or os.getcwd())
    try:
        return str(Path(path).resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class ComposeProject:
    """One compose file driven under one project name: the commands dispatch runs."""

    compose: ComposeCommand
    file: Path
    project: str
    env_file: Path | None = None
    build_file: Path | None = None
    """The override file that adds the services' ``build:`` sections (never used to run: no implicit builds)."""
    label_file: Path | None = None
    """The override file that labels this run's containers with their project and owner (``owners.py``)."""

    def base(self) -> list[str]:
        argv = [*self.compose.argv, "-f", str(self.file)]
        if self.label_file is not None:
            argv += ["-f", str(self.label_file)]
        argv += ["-p", self.project]
        if self.env_file is not None:
            argv += ["--env-file", str(self.env_file)]
        return argv

    def config(self) -> list[str]:
        return self.base() + ["config"]

    def no_pull(self) -> list[str]:
        """``--pull never`` where compose has it (v2); v1 has no such flag: the image is checked just before."""
        return ["--pull", "never"] if self.compose.major >= 2 else []

    def run(self, service: str, command: Sequence[str], *, env: Mapping[str, str | None], workdir: str,
            name: str) -> list[str]:
        """Ephemeral: a new container for one command; never pulls or builds. Not ``--rm``: the dispatcher
        reads the image id of the container that ran the item, then removes it."""
        return self.base() + [
            "run", "-T", "--no-deps", *self.no_pull(), "--name", name, "-w", workdir, *env_flags(env),
            service, *command,
        ]

    def up(self, services: Iterable[str], *, recreate: bool = False) -> list[str]:
        """Persistent: start the services' containers in the background; never pulls or builds."""
        extra = ["--force-recreate"] if recreate else []
        return self.base() + ["up", "-d", "--no-build", *self.no_pull(), "--no-deps", *extra, *services]

    def exec(self, service: str, command: Sequence[str], *, env: Mapping[str, str], workdir: str) -> list[str]:
        """Persistent: one command in the service's running container."""
        return self.base() + ["exec", "-T", "-w", workdir, *env_flags(env), service, *command]

    def ps_quiet(self, service: str) -> list[str]:
        return self.base() + ["ps", "-q", service]

    def down(self, timeout_s: int = 10) -> list[str]:
        return self.base() + ["down", "--remove-orphans", "-t", str(timeout_s)]

    def build_hint(self, services: Iterable[str], cwd: Path | None = None) -> str:
        """The exact command that builds the services' images (printed when one is missing)."""
        argv = [*self.compose.argv, "-f", display_path(self.file, cwd)]
        if self.build_file is not None:
            argv += ["-f", display_path(self.build_file, cwd)]
        if self.env_file is not None:
            argv += ["--env-file", display_path(self.env_file, cwd)]
        return shlex.join(argv + ["build", *services])

    def down_hint(self, cwd: Path | None = None) -> str:
        argv = [*self.compose.argv, "-f", display_path(self.file, cwd), "-p", self.project]
        if self.env_file is not None:
            argv += ["--env-file", display_path(self.env_file, cwd)]
        return shlex.join(argv + ["down"])


_PROJECT_BAD = re.compile(r"[^a-z0-9_-]+")


def project_name(*parts: str) -> str:
    """A valid compose project name (lowercase letters, digits, ``-``, ``_``; starts alphanumeric)."""
    name = _PROJECT_BAD.sub("-", "-".join(p for p in parts if p).lower()).strip("-_")
    return (name or "llenergy")[:63]


_CONTAINER_BAD = re.compile(r"[^a-zA-Z0-9_.-]+")


def container_name(*parts: str) -> str:
    """A valid container name built from ``parts`` (at most 120 characters)."""
    name = _CONTAINER_BAD.sub("-", "-".join(p for p in parts if p)).strip("-_.")
    return (name or "llenergy")[:120]
