"""Session end on the controller: statistics, exports, plots, report, saved runs, terminal summary.

Workers and dispatched runs never write these; a run that measured nothing writes nothing.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.plugin.base import session_of, storage_root
from pytest_llenergy.plugin.options import resolve
from pytest_llenergy.plugin.reporting.plain import plain_windows, save_name
from pytest_llenergy.plugin.reporting.totals import totals_line
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.state import LemRun
from pytest_llenergy.plugin.xdist import is_worker
from pytest_llenergy.results.export import summary_payload
from pytest_llenergy.results.schema import ExperimentResult
from pytest_llenergy.results.store import ENVIRONMENT_FILE, WALLTIME_FILE, atomic_write_json
from pytest_llenergy.results.walltime import wall_time_lines


def group_by_setting(config: pytest.Config, run: LemRun) -> list[str]:
    return list(resolve(config, "lem_group_by", run.plan.campaign))


MAX_WARNING_LINES = 20


def warning_lines(run: LemRun, verbosity: int) -> list[str]:
    """Warnings recorded in the run's results (engine fallbacks and the like), one line each."""
    found = [(r.item_id, w) for r in run.run_dir.results() for w in r.warnings]
    if not found:
        return []
    limit = len(found) if verbosity > 0 else MAX_WARNING_LINES
    lines = [f"warnings recorded in {len({i for i, _ in found})} item(s) (in each result's `warnings`):"]
    lines += [f"  {item}: {text[:200]}" for item, text in found[:limit]]
    if len(found) > limit:
        lines.append(f"  ... {len(found) - limit} more (-v shows all)")
    return lines


class ReportingPlugin:
    """Writes the run's outputs once, at session end, and tells the user what happened."""

    def __init__(self, config: pytest.Config, run: LemRun) -> None:
        self.config, self.run = config, run
        self.summary: Any = None
        self.lines: list[str] = []
        self.errors: list[str] = []

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.perf_counter()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """After the preflight: a run refused before its first item writes nothing."""
        from pytest_llenergy.energy import collect_environment

        try:
            environment = collect_environment(None)
            self.run.run_dir.write_json(ENVIRONMENT_FILE, environment)
            self.environment = environment
        except OSError as exc:
            self.environment = {}
            self.errors.append(f"could not write {ENVIRONMENT_FILE}: {exc}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        run = self.run
        if not run.run_dir.experiments_dir.is_dir() or not any(run.run_dir.experiments_dir.glob("*.json")):
            return
        for step, action in (("recording the wall time", self._write_walltime),
                             ("saving/comparing the run", self._save_and_compare), ("building summary/report", self._outputs)):
            try:
                action()
            except Exception as exc:  # the results on disk are safe; say what failed and how to redo it
                self.errors.append(f"{step} failed: {type(exc).__name__}: {exc}; results are intact "
                                   f"(rebuild with: lem report {run.run_dir.path})")
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            args = [a for a in self.config.invocation_params.args if a != "--lem-resume"]
            self.lines.append("interrupted: finished items are saved; resume with: pytest "
                              + " ".join(shlex.quote(str(a)) for a in args) + " --lem-resume")

    def _outputs(self) -> None:
        from pytest_llenergy.results.report import build_outputs, format_terminal_table

        run, config = self.run, self.config
        self.summary = build_outputs(run.run_dir.path, group_by=group_by_setting(config, run), seed=run.seed,
                                     cycles_configured=run.cycles, plots=not resolve(config, "lem_no_plots"),
                                     rows=run.run_dir.rows)
        config.hook.pytest_lem_summary(config=config, summary=self.summary)
        self.lines[:0] = format_terminal_table(self.summary, config.get_verbosity(), cycles_configured=run.cycles)
        self.lines += wall_time_lines(self.summary.header.get("wall_time"))
        carbon = totals_line(config, [r.footprint for r in run.run_dir.results() if r.footprint and r.status == "passed"])
        if carbon:
            self.lines.append(carbon)
        self.lines += warning_lines(run, config.get_verbosity())
        json_path = resolve(config, "lem_json")
        if json_path:
            self._write_json(Path(json_path))

    def _write_walltime(self) -> None:
        """This process's wall time, baseline seconds outside items and load counts (``walltime.json``)."""
        session = session_of(self.config)
        context, cache = session.context, session.backends
        in_items = sum(r.timing.baseline_s for r in self.run.run_dir.results() if r.timing is not None)
        outside = max(0.0, (context.baseline_s if context is not None else 0.0) - in_items)
        record = {"session_wall_s": time.perf_counter() - getattr(self, "started", time.perf_counter()),
                  "baseline_outside_items_s": outside,
                  "loads": cache.load_counts() if cache is not None else None}
        self.run.run_dir.write_json(WALLTIME_FILE, record)

    def _record(self, name: str) -> dict[str, Any]:
        from pytest_llenergy.results import load
        from pytest_llenergy.results.saved import run_record

        frame = load(self.run.run_dir.path, rows=self.run.run_dir.rows)
        record = run_record(frame, name=name, campaign=self.run.name, run_id=self.run.run_id,
                            environment=getattr(self, "environment", {}))
        plain = plain_windows(self.config)
        if plain is not None and plain.windows:  # plain tests run beside the campaign
            record["experiments"].update(plain.experiments())
            plain.handled = True
        return record

    def _save_and_compare(self) -> None:
        config = self.config
        name = save_name(config, self.run.name)
        session = session_of(config)
        saved = session.saved
        if not name and saved is None:
            return
        from pytest_llenergy.results.compare import compare_records, format_comparisons, parse_rules
        from pytest_llenergy.results.saved import save_run

        record = self._record(name or self.run.name)
        if saved is not None:
            rules = parse_rules(resolve(config, "lem_compare_fail")) or parse_rules(
                "energy_per_output_token:5% tokens_per_s:-5%")
            self.comparisons = compare_records(saved, record, rules, session.compare_alpha)
            self.lines += format_comparisons(self.comparisons, saved, record)
        if name:
            path = save_run(storage_root(config), record)
            self.lines.append(f"saved this run as {path}")

    def _write_json(self, path: Path) -> None:
        manifest = json.loads(self.run.run_dir.manifest_path.read_text())
        payload = {"campaign": self.run.name, "run_id": self.run.run_id, "run_dir": str(self.run.run_dir.path),
                   "seed": self.run.seed, "manifest": manifest, "summary": summary_payload(self.summary),
                   "verdicts": [{"key": k, "budget": r.budget} for k, r in self._verdicts()],
                   "comparisons": [c.__dict__ | {"rule": str(c.rule)} for c in getattr(self, "comparisons", [])]}
        plain = plain_windows(self.config)
        if plain is not None and plain.windows:
            payload["windows"] = plain.statistics()
            plain.handled = True
        if plain is not None:
            payload["verdicts"] += plain.verdicts
        atomic_write_json(path, payload)
        self.lines.append(f"json report: {path}")

    def _verdicts(self) -> list[tuple[str, ExperimentResult]]:
        return [(r.key, r) for r in self.run.run_dir.results() if r.budget is not None]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.lines and not self.errors:
            return
        terminalreporter.section("llenergy")
        for line in self.lines:
            terminalreporter.write_line(line)
        for line in self.errors:
            terminalreporter.write_line(f"ERROR: {line}", red=True)
        terminalreporter.write_line(f"results: {self.run.run_dir.path}")


def register(session: LemSession) -> None:
    """Configure step (controller, campaign): the plugin that writes the run's outputs at session end."""
    config, run = session.config, session.run
    if run is not None and not is_worker(config) and not config.option.collectonly:
        config.pluginmanager.register(ReportingPlugin(config, run), "llenergy-reporting")
