"""Checks made before the first item: GPU support of the daemon, the host driver against the image's
CUDA, the container user and whether it may write the results. Each returns one line per problem."""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llenergy.dispatch.compose import ComposeCommand
from pytest_llenergy.dispatch.docker import DaemonInfo, ImageInfo
from pytest_llenergy.dispatch.process import Runner, run_command

# The oldest Linux driver each CUDA major version runs on (minor-version compatibility; NVIDIA's CUDA
# release notes, table "CUDA Toolkit and Minimum Required Driver Version for CUDA Minor Version Compatibility").
MIN_DRIVER = {11: (450, 80, 2), 12: (525, 60, 13), 13: (580, 65, 6)}
FALLBACK_USER = (1000, 1000)


@dataclass
class ServiceInfo:
    service: str
    image: str | None
    info: ImageInfo | None = None
    problems: list[str] = field(default_factory=list)
    """Every problem of this service (image missing, no GPU runtime, driver too old), one line each."""

    @property
    def problem(self) -> str | None:
        return "; ".join(self.problems) if self.problems else None


@dataclass
class Preflight:
    """What the checks found: usable services, and each unusable one's reasons."""

    daemon: str | None = None
    compose: ComposeCommand | None = None
    services: dict[str, ServiceInfo] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    """Problems that stop every service (no CLI, no daemon, no compose, bad compose file, results not writable)."""
    notes: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) if self.errors else None

    def problems(self, services: Iterable[str]) -> list[str]:
        """Every problem found, one line each (a line shared by services once)."""
        lines = list(self.errors)
        for service in sorted(set(services)):
            info = self.services.get(service)
            lines += [p for p in (info.problems if info is not None else []) if p not in lines]
        return lines

    def problem(self, service: str) -> str | None:
        if self.errors:
            return self.error
        info = self.services.get(service)
        return info.problem if info is not None else f"service {service!r} was not checked"


def wants_gpu(service: Mapping[str, Any]) -> bool:
    """Whether a service (as ``compose config`` prints it) asks for NVIDIA GPUs."""
    if service.get("runtime") == "nvidia" or service.get("gpus"):
        return True
    devices = (((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
    return any(d.get("driver") == "nvidia" or "gpu" in (d.get("capabilities") or []) for d in devices
               if isinstance(d, dict))


def gpu_runtime_problem(service: str, info: DaemonInfo) -> str | None:
    if info.nvidia:
        return None
    return (f"service {service!r} reserves NVIDIA GPUs, but the daemon has no NVIDIA runtime and no CDI GPU devices "
            f"({info.describe()}): install nvidia-container-toolkit, run `nvidia-ctk runtime configure "
            "--runtime=docker` and restart dockerd")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def host_driver_version(runner: Runner = run_command, env: Mapping[str, str] | None = None) -> str | None:
    """The NVIDIA driver version of this host (``nvidia-smi``), or None without one."""
    if runner is run_command and shutil.which("nvidia-smi", path=(env or os.environ).get("PATH")) is None:
        return None
    done = runner(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], env=env, timeout=30)
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.ok else []
    return lines[0] if lines else None


def driver_problem(service: str, image: ImageInfo, driver: str | None) -> str | None:
    """The host driver is older than the image's CUDA needs (None when fine or unknown)."""
    cuda = image.cuda_version
    if not cuda or not driver:
        return None
    major = _version(cuda)[:1]
    needed = MIN_DRIVER.get(major[0]) if major else None
    if needed is None or _version(driver) >= needed:
        return None
    return (f"image {image.image} for service {service!r} needs CUDA {cuda}, which needs NVIDIA driver >= "
            f"{'.'.join(map(str, needed))}; this host has {driver}: upgrade the driver or use an image for an older CUDA")


def container_user(configured: str | None, uid: int, gid: int, environ: Mapping[str, str], rootdir: Path) -> tuple[int, int]:
    """The uid:gid containers run as. ``configured`` ("UID:GID") wins; else this user, unless it is root:
    then the user behind sudo, else the owner of the project, else 1000:1000. Never root unless configured."""
    if configured:
        user, _, group = configured.partition(":")
        return int(user), int(group or user)
    if uid != 0:
        return uid, gid
    sudo_uid, sudo_gid = environ.get("SUDO_UID", ""), environ.get("SUDO_GID", "")
    if sudo_uid.isdigit() and int(sudo_uid) != 0:
        return int(sudo_uid), int(sudo_gid) if sudo_gid.isdigit() else int(sudo_uid)
    try:
        owner = Path(rootdir).stat()
    except OSError:
        return FALLBACK_USER
    return (owner.st_uid, owner.st_gid) if owner.st_uid != 0 else FALLBACK_USER


def _may_write(info: os.stat_result, uid: int, gid: int) -> bool:
    if uid == 0:
        return True
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IWUSR and info.st_mode & stat.S_IXUSR)
    if info.st_gid == gid:
        return bool(info.st_mode & stat.S_IWGRP and info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IWOTH and info.st_mode & stat.S_IXOTH)


def prepare_writable(directory: Path, uid: int, gid: int, *, host_uid: int | None = None) -> str | None:
    """Make ``directory`` (the run directory) and what is in it writable by ``uid:gid``.

    Run as root, the host hands the run directory to the container's user (so its result files are
    that user's); otherwise it only checks. Returns the problem, or None.
    """
    host_uid = os.getuid() if host_uid is None else host_uid
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"results directory {directory} cannot be created ({exc.strerror or exc}): choose another --lem-results-dir"
    if host_uid == 0 and uid != 0:
        for path in [directory, *directory.rglob("*")]:
            try:
                os.chown(path, uid, gid, follow_symlinks=False)
            except OSError as exc:
                return f"cannot hand {path} to the container's user {uid}:{gid}: {exc}"
        return None
    problems = [p for p in [directory, *(q for q in directory.rglob("*") if q.is_dir())] if not _may_write(p.stat(), uid, gid)]
    if not problems:
        return None
    info = problems[0].stat()
    return (f"results directory {problems[0]} (owner {info.st_uid}:{info.st_gid}, mode {stat.filemode(info.st_mode)}) "
            f"is not writable by the container's user {uid}:{gid}: set dispatch.user to its owner, or "
            f"`chown -R {uid}:{gid} {directory}`")


def _may_enter(info: os.stat_result, uid: int, gid: int, bits: int) -> bool:
    """``bits`` (an rwx triple, e.g. 0o5) allowed to ``uid:gid`` on a file of ``info``."""
    if uid == 0:
        return True
    shift = 6 if info.st_uid == uid else 3 if info.st_gid == gid else 0
    return (info.st_mode >> shift) & bits == bits


def readable_problem(project: Path, uid: int, gid: int) -> str | None:
    """The project, bind-mounted at /workspace, must be readable by the container's user (its parents need
    not be: a bind mount does not go through them)."""
    project = Path(project).resolve()
    try:
        info = project.stat()
    except OSError as exc:
        return f"project directory {project}: {exc}"
    if _may_enter(info, uid, gid, 0o5):
        return None
    return (f"project directory {project} ({stat.filemode(info.st_mode)}, owner {info.st_uid}:{info.st_gid}) is not "
            f"readable by the container's user {uid}:{gid}: set dispatch.user to its owner, or `chmod o+rx {project}`")
