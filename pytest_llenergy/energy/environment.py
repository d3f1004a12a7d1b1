"""The measurement environment, as a JSON-serialisable dict (each unknown field is None).

GPU facts come from NVML when it loads; package versions from ``importlib.metadata`` (the
packages are never imported); the git commit of the working directory from ``git`` with a
2 s timeout. Environment variables are never recorded (they may hold secrets).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_llenergy.energy.sources.base import EnergySource
from pytest_llenergy.energy.sources.estimate import cpu_model
from pytest_llenergy.energy.threads import thread_environment

PACKAGES = {
    "torch": ("torch",),
    "transformers": ("transformers",),
    "vllm": ("vllm",),
    "tensorrt_llm": ("tensorrt_llm", "tensorrt-llm"),
    "pynvml": ("nvidia-ml-py", "pynvml"),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "pytest": ("pytest",),
    "pytest_llenergy": ("pytest-llenergy",),
}


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, None when it raises (an environment fact that cannot be read is left empty)."""
    try:
        value = fn(*args)
    except Exception:
        return None
    return value.decode() if isinstance(value, bytes) else value


def _milli(value: Any) -> float | None:
    return value / 1e3 if isinstance(value, int | float) else None


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that matter, None when absent."""
    out: dict[str, str | None] = {}
    for key, dists in PACKAGES.items():
        out[key] = next((v for d in dists if (v := _try(importlib.metadata.version, d))), None)
    return out


def _gpu_devices(nv: Any, handles: list[Any]) -> list[dict[str, Any]]:
    out = []
    for h in handles:
        mig = _try(nv.nvmlDeviceGetMigMode, h)
        out.append({
            "index": _try(nv.nvmlDeviceGetIndex, h),
            "name": _try(nv.nvmlDeviceGetName, h),
            "uuid": _try(nv.nvmlDeviceGetUUID, h),
            "power_limit_w": _milli(_try(nv.nvmlDeviceGetEnforcedPowerLimit, h)),
            "default_power_limit_w": _milli(_try(nv.nvmlDeviceGetPowerManagementDefaultLimit, h)),
            "persistence_mode": bool(p) if (p := _try(nv.nvmlDeviceGetPersistenceMode, h)) is not None else None,
            "mig_mode": bool(mig[0]) if isinstance(mig, (list, tuple)) and mig else None,
            "sm_clock_mhz": _try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
            "mem_clock_mhz": _try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
            "max_sm_clock_mhz": _try(nv.nvmlDeviceGetMaxClockInfo, h, nv.NVML_CLOCK_SM),
            "pstate": _try(nv.nvmlDeviceGetPerformanceState, h),
            "pcie_gen": _try(nv.nvmlDeviceGetCurrPcieLinkGeneration, h),
            "pcie_width": _try(nv.nvmlDeviceGetCurrPcieLinkWidth, h),
        })
    return out


def gpu_environment(indices: list[int] | None = None) -> dict[str, Any]:
    """Driver/CUDA/NVML versions and per-GPU facts; empty fields when NVML is unavailable."""
    info: dict[str, Any] = {"driver_version": None, "cuda_driver_version": None,
                            "nvml_version": None, "devices": []}
    try:
        import pynvml as nv

        nv.nvmlInit()
    except Exception as exc:
        info["error"] = f"NVML unavailable: {exc}"
        return info
    try:
        info["driver_version"] = _try(nv.nvmlSystemGetDriverVersion)
        cuda = _try(nv.nvmlSystemGetCudaDriverVersion)
        info["cuda_driver_version"] = f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None
        info["nvml_version"] = _try(nv.nvmlSystemGetNVMLVersion)
        if indices is None:
            indices = list(range(_try(nv.nvmlDeviceGetCount) or 0))
        handles = [h for i in indices if (h := _try(nv.nvmlDeviceGetHandleByIndex, i)) is not None]
        info["devices"] = _gpu_devices(nv, handles)
    finally:
        _try(nv.nvmlShutdown)
    return info


def _read(path: str) -> str | None:
    return _try(lambda: Path(path).read_text(encoding="utf-8").strip())


def cpu_environment() -> dict[str, Any]:
    import psutil

    return {
        "model": cpu_model(),
        "physical_cores": _try(lambda: psutil.cpu_count(logical=False)),
        "logical_cores": _try(lambda: psutil.cpu_count(logical=True)),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "ram_gb": _try(lambda: round(psutil.virtual_memory().total / 1024**3, 2)),
    }


def container_environment() -> dict[str, Any]:
    cgroup = _read("/proc/1/cgroup") or ""
    hints = [k for k in ("docker", "kubepods", "containerd", "lxc", "podman") if k in cgroup]
    dockerenv = os.path.exists("/.dockerenv")
    return {"in_container": dockerenv or bool(hints) or os.path.exists("/run/.containerenv"),
            "dockerenv": dockerenv, "cgroup_hints": hints}


def git_state(cwd: str | Path | None = None) -> dict[str, Any] | None:
    """Commit and dirty flag of the repository at ``cwd``; None when not a git repository."""
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                  timeout=2, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return None
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def collect_environment(source: EnergySource | None = None) -> dict[str, Any]:
    """Everything about the machine and software that may change an energy figure."""
    indices = None
    if source is not None and source.kind == "nvml":
        indices = [d.index for d in source.devices() if d.index is not None]
    return {
        "source": None if source is None else {
            "kind": source.kind, "estimated": source.estimated, "simulated": source.simulated,
            "devices": [d.label for d in source.devices()]},
        "host": platform.node(),
        "gpu": gpu_environment(indices),
        "cpu": cpu_environment(),
        "os": {"platform": platform.platform(), "system": platform.system(),
               "kernel": platform.release()},
        "container": container_environment(),
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "packages": package_versions(),
        "git": git_state(),
        "threads": thread_environment(),
    }
