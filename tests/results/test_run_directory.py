"""The run directory has one owner (issue 30): results/store.py declares every file name in it, and
every write into it is atomic."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from pytest_llenergy.results import store
from pytest_llenergy.results.store import RunDirectory, save_png

PACKAGE = Path(store.__file__).resolve().parents[1]
#: File names only a run directory has (folder names such as "experiments" double as record keys).
NAMES = {store.MANIFEST_FILE, store.ENVIRONMENT_FILE, store.WALLTIME_FILE, store.SUMMARY_JSON, store.SUMMARY_CSV,
         store.REPORT_FILE, store.DISPATCH_DIR, store.SEARCH_PLOT, store.SEARCH_SPEC_FILE.name}


def _spelled(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)} & NAMES


def test_only_the_store_spells_a_run_directory_file_name() -> None:
    spelled = {str(p.relative_to(PACKAGE)): names for p in PACKAGE.rglob("*.py")
               if p.name != "store.py" and (names := _spelled(p))}
    assert spelled == {}


def test_layout_paths_and_json_writes(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "run")
    assert not RunDirectory.looks_like(run.path)
    written = run.write_json(store.MANIFEST_FILE, {"a": 1})
    assert written == run.manifest_path and RunDirectory.looks_like(run.path)
    assert store.read_json(run.manifest_path) == {"a": 1} and store.read_json(run.environment_path) is None
    run.walltime_path.write_text("[1]")
    assert store.read_json(run.walltime_path) is None  # not an object
    assert run.relative(run.timeseries_path("x-1")) == "timeseries/x-1.parquet"
    assert run.relative(run.requests_path("x-1")) == "requests/x-1.parquet"
    assert run.relative(run.search_spec_path) == "search/spec.json" and run.dispatch_dir.name == ".dispatch"
    assert run.result_files() == [] and [p.name for p in run.temp_file_folders()] == ["run", "experiments", "timeseries"]
    assert json.loads(written.read_text()) == {"a": 1}


class _Figure:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def savefig(self, fname: Path, *, format: str) -> None:  # noqa: A002
        Path(fname).write_bytes(b"\x89PNG partial")
        if self.fail:
            raise OSError("disk full")


def test_a_plot_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    path = save_png(_Figure(fail=False), tmp_path / "plots" / store.metric_plot("energy_j", "experiment"))
    assert path.name == "energy_j_by_experiment.png" and path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(OSError, match="disk full"):
        save_png(_Figure(fail=True), tmp_path / "plots" / "other.png")
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["energy_j_by_experiment.png"]  # no partial file


def test_a_row_is_computed_once_per_version_of_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate's row (computed when the item ended) is the summary's: ``load`` and ``run_rows`` reuse it
    while the file is unchanged, and read a rewritten file (a baseline re-check) afresh."""
    from pytest_llenergy.results import frame

    from .factory import make_result

    run = RunDirectory(tmp_path / "run")
    results = [make_result(cycle=c, energy_j=100.0 + c) for c in (1, 2, 10)]
    for result in results:
        run.write_result(result, frame.result_row(result))
    fresh = frame.load(run.path)  # no cache: every file parsed and turned into a row
    calls: list[str] = []
    real = frame.result_row
    monkeypatch.setattr(frame, "result_row", lambda r, *a, **k: calls.append(r.item_id) or real(r, *a, **k))
    reused = frame.load(run.path, rows=run.rows)
    assert calls == [] and reused.equals(fresh)
    assert [r["cycle"] for r in frame.run_rows(run)] == [1, 2, 10] and calls == []
    rewritten = results[1].model_copy(update={"warnings": ["re-checked"]})
    run.write_result(rewritten)  # no row given: the next reader computes it
    again = frame.load(run.path, rows=run.rows)
    assert calls == [rewritten.item_id] and list(again["warnings"].fillna("")) == ["", "re-checked", ""]
    assert frame.load(run.path, rows=run.rows).equals(again) and calls == [rewritten.item_id]
