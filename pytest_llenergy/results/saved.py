"""Saved runs for comparison: ``.lem-benchmarks/<machine id>/NNNN_<name>.json``.

A saved run keeps every cycle's value of the compared metrics per experiment (so a later run can
bootstrap the ratio new/old), plus the machine and commit it was measured on.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from pytest_llenergy.results.metrics import METRIC_ALIASES
from pytest_llenergy.results.store import atomic_write_json

_SLUG = re.compile(r"[^a-z0-9.]+")


def machine_id(environment: dict[str, Any]) -> str:
    """``nvidia-h200-drv580.159.04``, or ``cpu-<model>`` on a machine without GPUs."""
    gpus = (environment.get("gpu") or {}).get("devices") or []
    if gpus:
        name = gpus[0].get("name") or "gpu"
        driver = (environment.get("gpu") or {}).get("driver_version") or "unknown"
        text = f"{name}-{len(gpus)}x-drv{driver}" if len(gpus) > 1 else f"{name}-drv{driver}"
    else:
        cpu = environment.get("cpu") or {}
        text = f"cpu-{cpu.get('model') or 'unknown'}"
    return _SLUG.sub("-", text.lower()).strip("-")


def run_record(frame: Any, *, name: str, campaign: str, run_id: str, environment: dict[str, Any]) -> dict[str, Any]:
    """The saved form of a run's results (``frame`` as returned by ``results.load``)."""
    experiments: dict[str, Any] = {}
    passed = frame[frame["status"] == "passed"] if "status" in frame else frame
    for experiment_id, rows in passed.groupby("experiment_id"):
        metrics = {}
        for column in set(METRIC_ALIASES.values()):
            if column in rows:
                values = [float(v) for v in rows.sort_values("cycle")[column] if v == v and v is not None]
                if values:
                    metrics[column] = values
        experiments[str(experiment_id)] = {"metrics": metrics, "n": int(len(rows))}
    git = environment.get("git") or {}
    return {
        "schema_version": 1, "name": name, "campaign": campaign, "run_id": run_id,
        "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine_id": machine_id(environment), "machine": {k: environment.get(k) for k in ("gpu", "cpu", "os")},
        "commit": {"id": git.get("commit"), "dirty": git.get("dirty")}, "experiments": experiments,
    }


def save_run(root: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as the next ``NNNN_<name>.json`` under its machine's folder."""
    folder = root / record["machine_id"]
    folder.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[:4]) for p in folder.glob("[0-9][0-9][0-9][0-9]_*.json")]
    number = max(numbers, default=0) + 1
    safe = _SLUG.sub("-", record["name"].lower()).strip("-") or "run"
    path = folder / f"{number:04d}_{safe}.json"
    atomic_write_json(path, dict(record, number=number))
    return path


def find_saved(root: Path, ref: str | None, machine: str | None) -> Path:
    """The saved run named by ``ref``: a number, a name, a path, or None for the latest.

    Looks in this machine's folder first, then in every machine's folder.
    """
    if ref and Path(ref).is_file():
        return Path(ref)
    folders = [root / machine] if machine and (root / machine).is_dir() else []
    folders += [p for p in sorted(root.glob("*")) if p.is_dir() and p not in folders]
    for folder in folders:
        files = sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.json"))
        if ref is None and files:
            return files[-1]
        for path in reversed(files):
            if ref is not None and (path.name[:4] == ref.zfill(4) or path.stem[5:] == ref or path.stem == ref):
                return path
    where = f" under {root}" if root.exists() else f" ({root} does not exist)"
    raise FileNotFoundError(f"no saved run {ref or '(latest)'}{where}; save one with --lem-save NAME")


def load_saved(path: Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "experiments" not in data:
        raise ValueError(f"{path}: not a saved pytest-llenergy run")
    return data
