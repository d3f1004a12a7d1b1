"""The run directory: atomic writes of results, time series and the environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_llenergy.config.files import atomic_write_bytes
from pytest_llenergy.results.schema import ExperimentResult, result_key


def atomic_write_json(path: Path, payload: Any) -> None:
    """``payload`` as indented JSON, written atomically (:func:`pytest_llenergy.config.files.write_atomically`)."""
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n").encode())


class RunDirectory:
    """``<results_dir>/<campaign>/<run-id>/`` and the files in it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def experiments_dir(self) -> Path:
        return self.path / "experiments"

    @property
    def timeseries_dir(self) -> Path:
        return self.path / "timeseries"

    def result_path(self, experiment_id: str, cycle: int) -> Path:
        return self.experiments_dir / f"{result_key(experiment_id, cycle)}.json"

    def write_result(self, result: ExperimentResult) -> Path:
        path = self.result_path(result.experiment_id, result.cycle)
        atomic_write_bytes(path, (result.model_dump_json(indent=2) + "\n").encode())
        return path

    def read_result(self, experiment_id: str, cycle: int) -> ExperimentResult | None:
        """The stored result, or None when missing or invalid (a corrupt file never counts as done)."""
        return load_result_file(self.result_path(experiment_id, cycle))

    def results(self) -> list[ExperimentResult]:
        """Every valid result in the run, sorted by experiment and cycle."""
        found = []
        if self.experiments_dir.is_dir():
            for file in sorted(self.experiments_dir.glob("*.json")):
                result = load_result_file(file)
                if result is not None:
                    found.append(result)
        return sorted(found, key=lambda r: (r.experiment_id, r.cycle))


def load_result_file(path: Path) -> ExperimentResult | None:
    try:
        return ExperimentResult.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None
