"""The run directory ``<results_dir>/<campaign>/<run-id>/``: the one place its file names are declared,
and every write into it (atomic: :func:`pytest_llenergy.config.files.write_atomically`, fsync'd).

Layout::

    manifest.json          planned items and their status (results/manifest.py)
    environment.json       host, GPUs, driver, packages (energy/environment.py)
    walltime.json          the session's wall time, baseline outside items, load counts
    experiments/<key>.json one ExperimentResult per (experiment, cycle)
    timeseries/<id>.parquet power and auxiliary series of an item's windows
    requests/<id>.parquet  per-request energy of an item (phases)
    search/spec.json       a search's spec; search/finished/<key>: items the race has seen end
    .dispatch/             reports containers leave for the host (removed when empty)
    summary.json, summary.csv, report.html, plots/   what ``lem report`` / the session writes
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from pytest_llenergy.config.files import atomic_write_bytes, write_atomically
from pytest_llenergy.results.schema import ExperimentResult, result_key

MANIFEST_FILE = "manifest.json"
ENVIRONMENT_FILE = "environment.json"
WALLTIME_FILE = "walltime.json"
EXPERIMENTS_DIR = "experiments"
TIMESERIES_DIR = "timeseries"
REQUESTS_DIR = "requests"
SEARCH_SPEC_FILE = Path("search") / "spec.json"
SEARCH_FINISHED_DIR = Path("search") / "finished"
DISPATCH_DIR = ".dispatch"
SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
REPORT_FILE = "report.html"
PLOTS_DIR = "plots"
SEARCH_PLOT = "search_pareto.png"


def metric_plot(metric: str, level: str) -> str:
    return f"{metric}_by_{level}.png"


def timeline_plot(experiment_id: str, cycle: int) -> str:
    return f"timeline_{experiment_id}_c{cycle}.png"


def requests_plot(experiment_id: str, cycle: int) -> str:
    return f"requests_{experiment_id}_c{cycle}.png"


def atomic_write_json(path: Path, payload: Any) -> None:
    """``payload`` as indented JSON, written atomically (:func:`pytest_llenergy.config.files.write_atomically`)."""
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n").encode())


class _Figure(Protocol):
    def savefig(self, fname: Any, *, format: str) -> None: ...  # noqa: A002 - matplotlib's own name


def save_png(fig: _Figure, path: Path) -> Path:
    """A matplotlib figure as PNG, written atomically."""
    return write_atomically(Path(path), lambda partial: fig.savefig(partial, format="png"))


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None when missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


#: Row keys that say where a result was read from (set when read, never cached).
WHERE_KEYS = ("run_dir", "source_file")


class RowCache:
    """Flat rows of result files (``results.frame.result_row``), each kept while its file is unchanged
    (same inode, size and modification time): the row the gate computed when the item ended is the row
    the summary reads, and a file rewritten since (a baseline re-check) is read afresh."""

    def __init__(self) -> None:
        self._rows: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def get(self, path: Path) -> dict[str, Any] | None:
        """A copy of the row of ``path`` while the file is the one it was computed from, else None."""
        kept = self._rows.get(Path(path))
        if kept is None or kept[0] != self._stamp(Path(path)):
            return None
        return dict(kept[1])

    def put(self, path: Path, row: dict[str, Any]) -> None:
        """Keep ``row`` for the file ``path`` as it is now (where it was read from is left out)."""
        stamp = self._stamp(Path(path))
        if stamp is not None:
            self._rows[Path(path)] = (stamp, {k: v for k, v in row.items() if k not in WHERE_KEYS})


class RunDirectory:
    """``<results_dir>/<campaign>/<run-id>/`` and the files in it (see the module's layout); ``rows``
    keeps the flat rows of its results computed in this process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows = RowCache()

    @staticmethod
    def looks_like(path: Path) -> bool:
        """Whether ``path`` is a run directory (a manifest or a results folder in it)."""
        return (Path(path) / MANIFEST_FILE).is_file() or (Path(path) / EXPERIMENTS_DIR).is_dir()

    @property
    def experiments_dir(self) -> Path:
        return self.path / EXPERIMENTS_DIR

    @property
    def timeseries_dir(self) -> Path:
        return self.path / TIMESERIES_DIR

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_FILE

    @property
    def environment_path(self) -> Path:
        return self.path / ENVIRONMENT_FILE

    @property
    def walltime_path(self) -> Path:
        return self.path / WALLTIME_FILE

    @property
    def search_spec_path(self) -> Path:
        return self.path / SEARCH_SPEC_FILE

    @property
    def search_finished_dir(self) -> Path:
        return self.path / SEARCH_FINISHED_DIR

    @property
    def dispatch_dir(self) -> Path:
        return self.path / DISPATCH_DIR

    def timeseries_path(self, item_id: str) -> Path:
        return self.timeseries_dir / f"{item_id}.parquet"

    def requests_path(self, item_id: str) -> Path:
        return self.path / REQUESTS_DIR / f"{item_id}.parquet"

    def relative(self, path: Path) -> str:
        """``path`` as results record it: relative to the run directory."""
        return str(Path(path).relative_to(self.path))

    def temp_file_folders(self) -> tuple[Path, ...]:
        """Where a killed atomic write may have left a hidden temp file."""
        return self.path, self.experiments_dir, self.timeseries_dir

    def result_path(self, experiment_id: str, cycle: int) -> Path:
        return self.experiments_dir / f"{result_key(experiment_id, cycle)}.json"

    def write_json(self, name: str | Path, payload: Any) -> Path:
        """``payload`` as JSON in the file ``name`` of this directory (atomic)."""
        path = self.path / name
        atomic_write_json(path, payload)
        return path

    def write_result(self, result: ExperimentResult, row: dict[str, Any] | None = None) -> Path:
        """Write ``result``; ``row``: its flat row, already computed, kept for the readers of this file."""
        path = self.result_path(result.experiment_id, result.cycle)
        atomic_write_bytes(path, (result.model_dump_json(indent=2) + "\n").encode())
        if row is not None:
            self.rows.put(path, row)
        return path

    def read_result(self, experiment_id: str, cycle: int) -> ExperimentResult | None:
        """The stored result, or None when missing or invalid (a corrupt file never counts as done)."""
        return load_result_file(self.result_path(experiment_id, cycle))

    def result_files(self) -> list[Path]:
        """The result files, sorted by name."""
        return sorted(self.experiments_dir.glob("*.json")) if self.experiments_dir.is_dir() else []

    def results(self) -> list[ExperimentResult]:
        """Every valid result in the run, sorted by experiment and cycle."""
        found = [r for r in map(load_result_file, self.result_files()) if r is not None]
        return sorted(found, key=lambda r: (r.experiment_id, r.cycle))


def load_result_file(path: Path) -> ExperimentResult | None:
    try:
        return ExperimentResult.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None
