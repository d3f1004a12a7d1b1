"""Who owns a container: labels on every container a run starts, and the sweep of those left by dead runs.

Each run labels its containers (through a small compose override file, so ``compose run`` and
``compose up`` alike, with the user's own compose file too) with the project they belong to (the
host's project directory) and the process that started them (host, pid and the pid's start time,
so a reused pid is not taken for the owner). A later run of the same project removes the
containers whose owner is gone: a run killed with SIGKILL, a crashed host process. Containers kept
on purpose (``keep_containers``) are left and reported; another project's or a live run's never
touched.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from pytest_llenergy.dispatch.process import Runner, run_command

PROJECT = "org.llenergy.project"
"""Label: the host's project directory (pytest's rootdir) the container ran items of."""
OWNER = "org.llenergy.owner"
"""Label: ``host:pid:start`` of the pytest process that started the container."""
KEEP = "org.llenergy.keep"
"""Label: ``true`` when the run was asked to keep its persistent containers."""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_id(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process named by an ``OWNER`` label still runs; None when it was another host's."""
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if Path("/proc").is_dir():
        return _start_time(pid) == start if start != "?" else _start_time(pid) is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def labels(project_dir: Path, keep: bool) -> dict[str, str]:
    return {PROJECT: str(Path(project_dir).resolve()), OWNER: owner_id(), KEEP: "true" if keep else "false"}


def write_label_file(services: Iterable[str], values: Mapping[str, str]) -> Path:
    """A compose override file that adds ``values`` as labels to ``services`` (removed by the caller)."""
    fd, name = tempfile.mkstemp(prefix="lem-compose-labels-", suffix=".yaml")
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump({"services": {service: {"labels": dict(values)} for service in sorted(services)}}, handle)
    return Path(name)


@dataclass
class Sweep:
    removed: list[str]
    kept: list[str]
    failed: list[str]

    def lines(self) -> list[str]:
        out = []
        if self.removed:
            out.append(f"removed {len(self.removed)} container(s) left running by earlier runs of this project "
                       "(their pytest ended without stopping them)")
        if self.failed:
            out.append(f"could not remove {len(self.failed)} container(s) left by earlier runs of this project: "
                       f"run docker rm -f {' '.join(self.failed)}")
        if self.kept:
            out.append(f"{len(self.kept)} container(s) kept by earlier runs of this project (keep_containers) are "
                       f"still there; remove them with: docker rm -f {' '.join(self.kept)}")
        return out


def sweep_orphans(project_dir: Path, runner: Runner = run_command, *, docker: str = "docker",
                  env: Mapping[str, str] | None = None) -> Sweep:
    """Remove this project's containers whose owning pytest process is gone (kept ones are only listed)."""
    result = Sweep([], [], [])
    listed = runner([docker, "ps", "-a", "--filter", f"label={PROJECT}={Path(project_dir).resolve()}",
                     "--format", f'{{{{.ID}}}} {{{{.Label "{OWNER}"}}}} {{{{.Label "{KEEP}"}}}}'], env=env, timeout=30)
    if not listed.ok:
        return result
    orphans: list[str] = []
    for line in listed.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2 or owner_alive(parts[1]) is not False:
            continue
        (result.kept if parts[2:] == ["true"] else orphans).append(parts[0])
    for container in orphans:
        done = runner([docker, "rm", "-f", container], env=env, timeout=60)
        (result.removed if done.ok else result.failed).append(container)
    return result
