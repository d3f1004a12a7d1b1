"""Where each cycle ran: host and GPUs per (experiment, cycle), and whether merged runs mixed hardware.

A campaign sharded over several nodes is merged by ``lem report``; its summary records, per
experiment, the host and GPU of every cycle, and flags a merge whose run directories ran on
different GPU models or drivers (their figures are then not one population).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llenergy.results.store import RunDirectory, read_json


def _environment(run_dir: Path) -> dict[str, Any]:
    return read_json(RunDirectory(run_dir).environment_path) or {}


def hardware_signature(environment: dict[str, Any]) -> dict[str, Any]:
    """GPU models (sorted, distinct) and driver of one run's environment; None where unknown."""
    gpu = environment.get("gpu") or {}
    models = sorted({str(d["name"]) for d in gpu.get("devices") or [] if isinstance(d, dict) and d.get("name")})
    return {"host": environment.get("host"), "gpu_models": models or None, "driver": gpu.get("driver_version")}


def placements(run_dirs: Sequence[Path]) -> dict[str, list[dict[str, Any]]]:
    """Per experiment id: one entry per cycle with host, GPUs (device, name, uuid), driver and run dir."""
    out: dict[str, list[dict[str, Any]]] = {}
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        signature = hardware_signature(_environment(run_dir))
        for result in RunDirectory(run_dir).results():
            devices = result.energy.devices if result.energy is not None else []
            gpus = [{"device": d.device, "name": d.name, "uuid": d.uuid} for d in devices]
            out.setdefault(result.experiment_id, []).append({
                "cycle": result.cycle, "host": result.host or signature["host"], "gpus": gpus,
                "driver": signature["driver"], "run_dir": str(run_dir), "status": result.status})
    for entries in out.values():
        entries.sort(key=lambda e: (e["cycle"], e["run_dir"]))
    return out


def mixed_hardware(run_dirs: Sequence[Path]) -> str | None:
    """A warning when the run directories ran on different GPU models or drivers, else None."""
    seen: dict[tuple[Any, Any], list[str]] = {}
    for run_dir in run_dirs:
        sig = hardware_signature(_environment(Path(run_dir)))
        if sig["gpu_models"] is None and sig["driver"] is None:
            continue
        key = (tuple(sig["gpu_models"] or ()), sig["driver"])
        seen.setdefault(key, []).append(sig["host"] or str(run_dir))
    if len(seen) < 2:
        return None
    parts = [f"{'/'.join(models) or 'no GPU'} driver {driver or '?'} on {', '.join(sorted(set(hosts)))}"
             for (models, driver), hosts in sorted(seen.items(), key=lambda kv: str(kv[0]))]
    return "merged runs used different GPU models or drivers: " + "; ".join(parts)
