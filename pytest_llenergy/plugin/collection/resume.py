"""``--lem-resume``: re-run only what is not finished, in the same run directory.

State lives in the pytest cache (``d/llenergy/runs/<key>.json``), keyed by campaign name and
results location (not by the file's hash: editing the campaign re-runs only the experiments
whose effective config, and so whose id, changed). It is rewritten atomically after every
finished item by the controller, so a crash or kill -9 loses nothing. An item counts as done
only when its result file exists, validates and says passed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.plugin.base import LEM_RESULT_PROPERTY, get_run, report_property, session_of
from pytest_llenergy.plugin.options import resolve
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.state import LemRun
from pytest_llenergy.plugin.xdist import is_worker
from pytest_llenergy.results.manifest import load_manifest
from pytest_llenergy.results.schema import result_key
from pytest_llenergy.results.store import RunDirectory, atomic_write_json, load_result_file


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def state_path(config: pytest.Config, run: LemRun) -> Path:
    key = hashlib.sha256(f"{run.name}\0{run.results_root}".encode()).hexdigest()[:16]
    return config.cache.mkdir("llenergy") / "runs" / f"{key}.json"


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("run_id"), str) else None


def finished_keys(run: LemRun) -> set[str]:
    """Keys of this run's items whose result file exists, validates and passed."""
    done = set()
    for item in run.items():
        path = run.run_dir.result_path(item.experiment.id, item.cycle)
        if path.exists():
            result = load_result_file(path)
            if result is not None and result.status == "passed":
                done.add(result_key(item.experiment.id, item.cycle))
    return done


def remove_stale_temp_files(run_dir: Path) -> int:
    """Delete temp files that a killed atomic write left behind (never results: those are renamed in whole).

    Runs in ``pytest_configure`` on the controller, before any worker can be writing.
    """
    removed = 0
    for folder in RunDirectory(run_dir).temp_file_folders():
        for path in folder.glob(".*.tmp") if folder.is_dir() else ():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _age(started: str) -> str:
    try:
        seconds = (_now() - dt.datetime.fromisoformat(started)).total_seconds()
    except ValueError:
        return "unknown age"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago" if seconds < 172800 else f"{seconds / 86400:.0f} days ago"


class ResumePlugin:
    """Controller side: chooses the run to continue, and records progress after every item."""

    def __init__(self, config: pytest.Config, run: LemRun) -> None:
        self.config, self.run = config, run
        self.path = state_path(config, run)
        self.lines: list[str] = []
        self.state: dict[str, Any] = {}
        self._prepare()

    def _prepare(self) -> None:
        config, run = self.config, self.run
        previous = read_state(self.path)
        dry = bool(config.option.collectonly)  # a dry run changes nothing on disk
        if config.getoption("lem_resume_reset"):
            verb = "would forget (--collect-only: nothing deleted)" if dry else "forgetting"
            if previous:
                self.lines.append(
                    f"lem-resume: reset: {verb} run {previous['run_id']} ({len(previous.get('done', {}))} items done);"
                    f" its results stay in {previous.get('run_dir')}")
            else:
                self.lines.append("lem-resume: reset: no saved state to forget")
            if not dry:
                self.path.unlink(missing_ok=True)
            previous = None
        if resolve(config, "lem_resume") and previous:
            run.use_run_id(previous["run_id"])
            removed = 0 if dry else remove_stale_temp_files(run.run_dir.path)
            if removed:
                self.lines.append(f"lem-resume: removed {removed} partial file(s) left by an interrupted write")
            self.lines += campaign_edits(run)
            run.done = frozenset(finished_keys(run))
            total = len(run.items())
            done = len(run.done & {result_key(i.experiment.id, i.cycle) for i in run.items()})
            started = previous.get("created_at", "")
            self.lines.append(
                f"lem-resume: {done} of {total} items done (run {started[:16]}, {_age(started)}); "
                f"{total - done} to run; --lem-resume-reset to start over")
            self.state = previous
        elif resumable_from_disk(config, run):
            self.lines.append(resume_from_disk(run))
        elif resolve(config, "lem_resume"):
            self.lines.append("lem-resume: no earlier run of this campaign; starting a new one")
        if not self.state:
            self.state = {"campaign": run.name, "run_id": run.run_id, "run_dir": str(run.run_dir.path),
                          "created_at": _now().isoformat(timespec="seconds"), "done": {}}
        session_of(config).resume_lines = self.lines

    def save(self) -> None:
        self.state["updated_at"] = _now().isoformat(timespec="seconds")
        try:
            atomic_write_json(self.path, self.state)
        except OSError as exc:  # the result files stay the truth; resume recomputes from them
            self.lines.append(f"lem-resume: could not save state ({exc}); results on disk are unaffected")

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.config.option.collectonly:
            self.save()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = report_property(report, LEM_RESULT_PROPERTY)
        if result is None or result["status"] != "passed":
            return
        key = Path(result["path"]).stem
        self.state.setdefault("done", {})[key] = _now().isoformat(timespec="seconds")
        self.save()


def _stem(experiment_id: str) -> str:
    """An experiment id without its config hash: the same point of the grid, maybe changed."""
    head, _, tail = experiment_id.rpartition("-")
    return head if head and len(tail) == 8 else experiment_id


def campaign_edits(run: LemRun) -> list[str]:
    """Lines naming experiments added, dropped or changed since the resumed run's manifest; dropped
    ones (and the old side of changed ones) are recorded so the summary leaves them out."""
    manifest = load_manifest(run.run_dir.manifest_path)
    if manifest is None:
        return []
    old = {e.experiment_id for e in manifest.entries.values()} - set(manifest.dropped)
    new = {e.id for e in run.plan.experiments}
    gone, added = sorted(old - new), sorted(new - old)
    old_by_stem = {_stem(e): e for e in gone}
    changed = [(old_by_stem[_stem(e)], e) for e in added if _stem(e) in old_by_stem]
    changed_old, changed_new = {o for o, _ in changed}, {n for _, n in changed}
    run.extras["dropped_experiments"] = gone
    lines = []
    if changed:
        lines.append("lem-resume: campaign edited: changed " + ", ".join(f"{o} -> {n}" for o, n in changed))
    if [e for e in added if e not in changed_new]:
        lines.append("lem-resume: campaign edited: added " + ", ".join(e for e in added if e not in changed_new))
    if [e for e in gone if e not in changed_old]:
        lines.append("lem-resume: campaign edited: dropped " + ", ".join(e for e in gone if e not in changed_old))
    if gone:
        lines.append(f"lem-resume: {len(gone)} experiment(s) no longer in the campaign are left out of the summary "
                     "(their result files stay)")
    return lines


def resumable_from_disk(config: pytest.Config, run: LemRun) -> bool:
    """``--lem-resume`` with an explicit ``--lem-run-id`` whose directory exists: a requeued batch task
    (maybe on another node, without this pytest cache) resumes from the result files on disk."""
    return bool(resolve(config, "lem_resume") and config.getoption("lem_run_id") and run.run_dir.path.is_dir())


def resume_from_disk(run: LemRun) -> str:
    removed = remove_stale_temp_files(run.run_dir.path)
    run.done = frozenset(finished_keys(run))
    note = f"; removed {removed} partial file(s)" if removed else ""
    return (f"lem-resume: no saved state; run {run.run_id} has {len(run.done)} finished item(s) on disk, "
            f"{len(run.items()) - len(run.done)} to run{note}")


def register(session: LemSession) -> None:
    """Configure step (controller): choose the run to continue and record progress after every item."""
    config, run = session.config, session.run
    if run is None or is_worker(config):
        return
    if not hasattr(config, "cache"):  # -p no:cacheprovider: no saved state, only the files on disk
        if resumable_from_disk(config, run):
            session.resume_lines = [resume_from_disk(run)]
        return
    config.pluginmanager.register(ResumePlugin(config, run), "llenergy-resume")


def pytest_report_collectionfinish(config: pytest.Config) -> list[str] | None:
    """After collection: what ``--lem-resume`` found (``session.resume_lines``)."""
    return session_of(config).resume_lines or None


def deselect_done(config: pytest.Config, items: list[pytest.Item], keys: list[str | None]) -> None:
    """Drop items whose key is in the run's done set, announcing them through ``pytest_deselected``."""
    run = get_run(config)
    if run is None or not run.done:
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item, key in zip(items, keys):
        (dropped if key is not None and key in run.done else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
