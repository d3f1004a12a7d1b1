"""``manifest.json``: every planned (experiment, cycle) of a run with its status, rewritten atomically."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from pytest_llenergy.results.schema import Status, result_key
from pytest_llenergy.results.store import atomic_write_bytes


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class ManifestEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment_id: str
    cycle: int
    item_id: str
    status: Status = "pending"
    result_path: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    error: str | None = None
    container: dict[str, Any] | None = None
    """Docker dispatch: service, image, image id, container and the versions seen inside it."""


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    campaign: str
    campaign_hash: str
    description: str = ""
    run_id: str
    seed: int
    order: str
    cycles: int
    group_by: list[str] = []
    dropped: list[str] = []  # experiments removed from the campaign before a resume (results kept)
    created_at: str
    updated_at: str
    entries: dict[str, ManifestEntry]


class ManifestWriter:
    """Owns one run's manifest (controller only); each update rewrites the file atomically."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest
        self.write_error: str | None = None

    @classmethod
    def open(cls, path: Path, *, campaign: str, campaign_hash: str, run_id: str, seed: int, order: str,
             cycles: int, planned: list[tuple[str, int, str]], group_by: list[str] | None = None,
             dropped: list[str] | tuple[str, ...] = (), description: str = "") -> ManifestWriter:
        """Load the run's manifest (resumed run) or start one; add planned items not yet listed."""
        manifest = load_manifest(path)
        if manifest is None:
            now = _now()
            manifest = Manifest(campaign=campaign, campaign_hash=campaign_hash, run_id=run_id, seed=seed,
                                order=order, cycles=cycles, created_at=now, updated_at=now, entries={})
        manifest.campaign_hash = campaign_hash
        manifest.description = description
        if group_by is not None:
            manifest.group_by = list(group_by)
        planned_ids = {experiment_id for experiment_id, _, _ in planned}
        manifest.dropped = sorted((set(manifest.dropped) | set(dropped)) - planned_ids)
        for experiment_id, cycle, item_id in planned:
            key = result_key(experiment_id, cycle)
            if key not in manifest.entries:
                manifest.entries[key] = ManifestEntry(experiment_id=experiment_id, cycle=cycle, item_id=item_id)
        writer = cls(path, manifest)
        writer.save()
        return writer

    def update(self, key: str, **changes: object) -> None:
        entry = self.manifest.entries.get(key)
        if entry is None:
            return
        for name, value in changes.items():
            setattr(entry, name, value)
        self.save()

    def running(self) -> list[str]:
        return [k for k, e in self.manifest.entries.items() if e.status == "running"]

    def save(self) -> None:
        """Rewrite the file atomically; a failed write keeps the previous file and is remembered."""
        self.manifest.updated_at = _now()
        try:
            atomic_write_bytes(self.path, (self.manifest.model_dump_json(indent=2) + "\n").encode())
        except OSError as exc:
            self.write_error = f"manifest not updated ({self.path}): {exc}"
        else:
            self.write_error = None


def load_manifest(path: Path) -> Manifest | None:
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None
