"""``lem doctor``: everything a campaign can need on this machine, each with a verdict.

GPUs and driver, energy sources, backends, docker (daemon, compose, NVIDIA runtime, built images),
Slurm, CPU threads and load, and the results directory. ``--json`` prints the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

OK, WARN, FAIL, NA = "ok", "warn", "fail", "n/a"
CORE_AREAS = ("energy", "backend", "results")  # a failure here means no campaign can run


@dataclass
class Check:
    area: str
    name: str
    status: str  # ok | warn | fail | n/a (not needed here)
    detail: str


def _run(argv: list[str], timeout: float = 10.0) -> tuple[int, str]:
    """Exit status and output: stdout on success; on failure what the program said on stderr
    (its last line: docker prints ``|null`` on stdout and the reason on stderr), else stdout."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    if done.returncode != 0:
        said = [line.strip() for line in (done.stderr or "").splitlines() if line.strip()]
        return done.returncode, said[-1] if said else (done.stdout or "").strip() or f"exit status {done.returncode}"
    return done.returncode, (done.stdout or done.stderr).strip()


def gpu_checks() -> list[Check]:
    from pytest_llenergy.energy.environment import gpu_environment

    gpu = gpu_environment()
    devices = gpu.get("devices") or []
    if not devices:
        return [Check("gpu", "GPUs", NA, f"none: {gpu.get('error', 'NVML found no device')} (CPU campaigns only)")]
    names = ", ".join(f"{d.get('index')}: {d.get('name')} ({d.get('power_limit_w')} W limit)" for d in devices)
    return [Check("gpu", "GPUs", OK, names),
            Check("gpu", "driver", OK, f"driver {gpu.get('driver_version')}, CUDA {gpu.get('cuda_driver_version')}")]


def source_checks() -> list[Check]:
    from pytest_llenergy.energy import resolve_source

    checks = []
    for kind in ("nvml", "rapl", "estimate"):
        try:
            source, reason = resolve_source(kind)
        except Exception as exc:  # each source says why it cannot start
            checks.append(Check("energy", kind, NA if kind != "estimate" else FAIL, str(exc)[:200]))
            continue
        source.close()
        checks.append(Check("energy", kind, OK, reason))
    auto_ok = any(c.status == OK for c in checks)
    try:
        source, reason = resolve_source("auto")
        source.close()
    except Exception as exc:
        reason = str(exc)
    checks.append(Check("energy", "auto", OK if auto_ok else FAIL, reason))
    return checks


def backend_checks() -> list[Check]:
    from pytest_llenergy.backends.base import BackendNotFound, get_backend
    from pytest_llenergy.config.registry import known_backends

    checks = []
    for name in sorted(known_backends()):
        try:
            ok, why = get_backend(name).available()
        except BackendNotFound as exc:
            ok, why = False, str(exc)
        checks.append(Check("backend", name, OK if ok else NA, "available" if ok else why))
    return checks


def docker_files_check() -> Check:
    """The compose files and Dockerfiles shipped in the package, where dispatch finds them."""
    from pytest_llenergy.dispatch.errors import DispatchError
    from pytest_llenergy.dispatch.files import docker_dir, missing_files

    try:
        folder = docker_dir()
        missing = missing_files(folder)
    except DispatchError as exc:
        return Check("docker", "docker files", FAIL, str(exc))
    if missing:
        return Check("docker", "docker files", FAIL, f"{folder}: missing {', '.join(missing)} (reinstall pytest-llenergy)")
    return Check("docker", "docker files", OK, f"{folder} (compose.yaml, compose.build.yaml, .env, Dockerfiles)")


def build_hint() -> str:
    """How to build the images from the shipped files (and where their source must come from)."""
    from pytest_llenergy.dispatch.files import build_context_problem, docker_dir

    folder = docker_dir()
    hint = f"docker compose -f {folder / 'compose.yaml'} -f {folder / 'compose.build.yaml'} build"
    problem = build_context_problem(folder / "compose.build.yaml", os.environ)
    return hint + (f"; {problem}" if problem else "")


def docker_checks() -> list[Check]:
    files = docker_files_check()
    docker = shutil.which("docker")
    if docker is None:
        return [files, Check("docker", "docker", NA, "not found (container dispatch unavailable; items run here)")]
    checks = [files, Check("docker", "docker", OK, docker)]
    code, out = _run([docker, "info", "--format", "{{.ServerVersion}}|{{json .Runtimes}}"])
    if code != 0:
        return checks + [Check("docker", "daemon", FAIL, f"not reachable: {out[:200]}")]
    version, _, runtimes = out.partition("|")
    checks.append(Check("docker", "daemon", OK, f"server {version}"))
    nvidia = "nvidia" in runtimes
    checks.append(Check("docker", "NVIDIA runtime", OK if nvidia else WARN,
                        "nvidia runtime registered" if nvidia else "no nvidia runtime (GPU containers cannot start; "
                        "install nvidia-container-toolkit)"))
    code, out = _run([docker, "compose", "version", "--short"])
    checks.append(Check("docker", "compose", OK if code == 0 else FAIL,
                        f"compose {out}" if code == 0 else f"docker compose unavailable: {out[:200]}"))
    code, out = _run([docker, "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=llenergy/*"])
    images = [line for line in out.splitlines() if line.strip()] if code == 0 else []
    checks.append(Check("docker", "images", OK if images else WARN,
                        ", ".join(images) if images else "no llenergy/* image built yet (dispatch never builds "
                        f"them): {build_hint()}"))
    return checks


def slurm_checks() -> list[Check]:
    found = {tool: shutil.which(tool) for tool in ("sbatch", "squeue", "sinfo")}
    if not any(found.values()):
        return [Check("slurm", "Slurm", NA, "no sbatch/squeue/sinfo (lem slurm submit unavailable)")]
    missing = [t for t, p in found.items() if p is None]
    code, out = _run(["sinfo", "--noheader", "--summarize"]) if found["sinfo"] else (1, "")
    detail = f"tools found{'; missing ' + ', '.join(missing) if missing else ''}; " + (
        out.splitlines()[0] if code == 0 and out else "sinfo gave no partition")
    return [Check("slurm", "Slurm", OK if not missing and code == 0 else WARN, detail)]


def thread_checks() -> list[Check]:
    from pytest_llenergy.energy.threads import load_warning, plan_threads

    plan = plan_threads()
    checks = [Check("threads", "inference threads", OK, plan.describe())]
    warning = load_warning(plan.cores)
    checks.append(Check("threads", "load", WARN if warning else OK, warning or "load average below the core count"))
    return checks


def results_check(path: Path) -> Check:
    """Writable where it exists, else creatable in its nearest existing parent (nothing is left behind)."""
    existing = path.resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".lem-doctor-"):
            pass
    except OSError as exc:
        return Check("results", "results directory", FAIL, f"{path}: not writable ({exc.strerror or exc})")
    where = "is writable" if existing == path.resolve() else f"can be created (in {existing})"
    return Check("results", "results directory", OK, f"{path.resolve()} {where}")


def all_checks(results_dir: Path) -> list[Check]:
    return [*gpu_checks(), *source_checks(), *backend_checks(), *docker_checks(), *slurm_checks(), *thread_checks(),
            results_check(results_dir)]


def verdict(checks: list[Check]) -> tuple[str, list[str]]:
    """``ready`` / ``ready with warnings`` / ``not ready``, and what this machine can run."""
    by = {(c.area, c.name): c for c in checks}
    can = []
    if any(c.area == "backend" and c.status == OK for c in checks):
        gpu = by.get(("energy", "nvml"))
        can.append("GPU energy campaigns (NVML)" if gpu and gpu.status == OK else "CPU campaigns (estimated or RAPL energy)")
    if all(by.get(("docker", n), Check("", "", FAIL, "")).status == OK for n in ("docker files", "daemon", "compose")):
        can.append("container dispatch")
    if by.get(("slurm", "Slurm"), Check("", "", NA, "")).status == OK:
        can.append("Slurm job arrays")
    core = [c for c in checks if c.status == FAIL and c.area in CORE_AREAS]
    if core or not can:
        return "not ready", can
    warned = any(c.status in (WARN, FAIL) for c in checks)  # optional areas (docker, Slurm) only limit `can`
    return ("ready with warnings" if warned else "ready"), can


def doctor(args: argparse.Namespace) -> int:
    checks = all_checks(Path(args.results_dir))
    state, can = verdict(checks)
    if args.json:
        print(json.dumps({"verdict": state, "can_run": can, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        marks = {OK: "ok  ", WARN: "WARN", FAIL: "FAIL", NA: "--  "}
        for c in checks:
            print(f"[{marks[c.status]}] {c.area:<8} {c.name:<18} {c.detail}")
        print(f"verdict: {state}" + (f"; can run: {', '.join(can)}" if can else ""))
    return 1 if state == "not ready" else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="what this machine can measure and run, with a verdict")
    p.add_argument("--json", action="store_true", help="print the checks and the verdict as JSON")
    p.add_argument("--results-dir", default="lem-results", help="results directory to check (default lem-results)")
    p.set_defaults(func=doctor)
