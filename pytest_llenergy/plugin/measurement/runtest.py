"""Running campaign items: the ``lem_experiment``, ``lem_session`` and ``lem_result`` fixtures,
and the result file written for every item that ran, passed or failed."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any, cast

import pytest

from pytest_llenergy.backends.base import BackendNotFound, Session, get_backend
from pytest_llenergy.backends.resident import ResidentSessions
from pytest_llenergy.config.reuse import ReuseConfig
from pytest_llenergy.plugin.base import (
    HANDLES,
    LEM_KEY_PROPERTY,
    LEM_RESULT_PROPERTY,
    RECORDER,
    VERDICT_ATTR,
    WINDOWS,
    campaign_item,
    force_cold_start,
    get_run,
    session_of,
)
from pytest_llenergy.plugin.measurement.carbon import item_footprint
from pytest_llenergy.plugin.recorder import ItemRecorder
from pytest_llenergy.plugin.state import CampaignItem
from pytest_llenergy.results.budgets import Verdict
from pytest_llenergy.results.schema import LoadInfo, result_key

NO_CAMPAIGN = "no campaign: pass --lem-campaign PATH (or set lem_campaign in the ini file)"


class SessionCache:
    """The process's resident backend sessions (see :mod:`pytest_llenergy.backends.resident`), sized by the campaign's ``reuse``."""

    def __init__(self, reuse: ReuseConfig | None = None) -> None:
        reuse = reuse or ReuseConfig()
        self.sessions = ResidentSessions(reuse.max_resident, reuse.budget())

    def get(self, item: CampaignItem, force_cold: bool = False) -> tuple[Session, LoadInfo, list[str], float]:
        """(session, load record, warnings, seconds spent loading and evicting)."""
        backend = get_backend(item.config.backend)
        ok, reason = backend.available()
        if not ok:
            pytest.skip(f"backend {item.config.backend!r} unavailable: {reason}")
        key = f"{item.config.backend}:{backend.load_key(item.config)}"
        started = time.perf_counter()
        session, info = self.sessions.get(backend, item.config, key, force_cold)
        warnings = info.pop("warnings", [])
        return session, LoadInfo(**info), warnings, time.perf_counter() - started

    def load_counts(self) -> dict[str, Any]:
        return self.sessions.counts.to_dict()

    def close(self) -> None:
        self.sessions.close_all()


def session_cache(config: pytest.Config) -> SessionCache:
    """The process's resident backend sessions (``LemSession.backends``), made on first use."""
    session = session_of(config)
    if session.backends is None:
        run = session.run
        session.backends = SessionCache(run.plan.campaign.reuse if run is not None else None)
    return cast(SessionCache, session.backends)


def seal_windows(item: pytest.Item) -> None:
    """Refuse ``record()`` on the item's windows from now on: their figures have been reported."""
    for window in item.stash.get(HANDLES, []):
        window.seal("the test's report was already made")


def judge(item: pytest.Item, figures: dict[str, Any] | None, report: pytest.TestReport) -> Verdict | None:
    """The item's gate verdict (``LemSession.gates``: budgets and the comparison with a saved run); a
    failed one turns the passed report into a gate failure."""
    gates = session_of(item.config).gates
    verdict = gates.judge(item, figures) if gates is not None else None
    if gates is not None and verdict is not None and verdict.failed:
        gates.fail(report, verdict, item)
    return verdict


@pytest.fixture
def lem_experiment(request: pytest.FixtureRequest) -> CampaignItem:
    """The campaign item (experiment and cycle) this test runs; parametrised from the campaign."""
    pytest.skip(NO_CAMPAIGN)


@pytest.fixture
def lem_result(request: pytest.FixtureRequest) -> ItemRecorder:
    """The item's result record: ``lem_result.record_generation(stats)`` after the measured run."""
    recorder = request.node.stash.get(RECORDER, None)
    if recorder is None:
        pytest.skip(NO_CAMPAIGN)
    return recorder


@pytest.fixture
def lem_session(request: pytest.FixtureRequest, lem_experiment: CampaignItem, lem_result: ItemRecorder) -> Session:
    """The loaded backend session for this item (reused while resident: see the campaign's ``reuse``)."""
    cache = session_cache(request.config)
    try:
        session, load, warnings, spent = cache.get(lem_experiment, force_cold=force_cold_start(request.config))
    except BackendNotFound as exc:
        pytest.skip(str(exc))
    lem_result.load = load
    lem_result.timing["load_s"] += spent
    lem_result.warnings.extend(warnings)
    lem_result.engine.update(getattr(session, "engine_info", {}) or {})
    try:  # relative prompt files resolve next to the campaign (BaseSession and any session that takes it)
        cast(Any, session).base_dir = lem_result.run.plan.base_dir
    except AttributeError:  # a third-party session with __slots__ and no base_dir
        pass
    return session


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Item setup: the campaign item's result record (``item.stash[RECORDER]``)."""
    run, citem = get_run(item.config), campaign_item(item)
    if run is not None and citem is not None:
        item.stash[RECORDER] = ItemRecorder(run, citem, item.nodeid)


def _error_text(report: pytest.TestReport) -> str:
    text = report.longreprtext or ""
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    return "\n".join(lines[-10:]) if lines else text[-2000:]


def window_figures(window: dict[str, Any] | None, same_name: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Flat figures of a bare window (tests outside a campaign), named like result columns.

    With ``same_name`` (every window of the test called like the first, a loop's windows) each
    figure is their mean, and ``n_windows`` says how many: a budget judges them all, not the first.
    """
    figures = dict(window or {})
    figures["energy_adjusted_j"] = figures.get("adjusted_energy_j")
    if same_name and len(same_name) > 1:
        from pytest_llenergy.results.windows import metric_values

        figures.update({column: sum(v) / len(v) for column, v in metric_values(same_name).items()})
        figures["output_tokens"] = sum(w.get("output_tokens") or 0 for w in same_name) or None
        figures["n_windows"] = len(same_name)
    return figures


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Item report: seal the windows; a campaign item's result is built, judged and written; a plain
    test's windows are judged by its gates."""
    report: pytest.TestReport = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        seal_windows(item)
    citem = campaign_item(item)
    if citem is not None:
        report.user_properties.append((LEM_KEY_PROPERTY, result_key(citem.experiment.id, citem.cycle)))
    recorder = item.stash.get(RECORDER, None)
    finished = report.when == "call" or (report.when == "setup" and not report.passed)
    if recorder is not None and not recorder.extra.get("written") and finished and not report.skipped:
        _finish_campaign_item(item, recorder, report)
    elif recorder is None and report.when == "call" and report.passed:
        _judge_plain_test(item, report)
    return report


def _judge_plain_test(item: pytest.Item, report: pytest.TestReport) -> None:
    """A plain test's gates, on its first window's figures (the mean of its repetitions); the verdict
    rides on the report (``VERDICT_ATTR``) to the controller."""
    windows: list[dict[str, Any]] = item.stash.get(WINDOWS, [])
    first = [w for w in windows if w.get("name") == windows[0].get("name")] if windows else []
    verdict = judge(item, window_figures(windows[0], first) if windows else None, report)
    if verdict is not None:
        setattr(report, VERDICT_ATTR, {"failed": verdict.failed, "breaches": verdict.breaches,
                                       "checks": verdict.checks})


def _finish_campaign_item(item: pytest.Item, recorder: ItemRecorder, report: pytest.TestReport) -> None:
    """Build the result, judge its gates (budgets, comparison), write it, tell the controller."""
    from pytest_llenergy.results.frame import result_row

    windows: list[dict[str, Any]] = item.stash.get(WINDOWS, [])
    recorder.windows = list(windows)
    measured = report.passed
    result = recorder.build("passed" if measured else "failed", None if measured else _error_text(report))
    workload = result.config.get("workload") or {}
    result.footprint = item_footprint(item.config, result.energy.energy_j if result.energy else None,
                                      workload.get("num_prompts"))
    row = result_row(result)  # computed once: the gate's row is the summary's (RunDirectory.rows)
    if measured:
        verdict = judge(item, row, report)
        if verdict is not None:
            result.budget = {"failed": verdict.failed, "breaches": verdict.breaches, "checks": verdict.checks}
    try:
        path = recorder.run.run_dir.write_result(result, row)
    except OSError as exc:  # unwritable or full results dir: fail this item, keep the campaign going
        recorder.extra["written"] = True
        report.outcome = "failed"
        report.longrepr = (f"llenergy: could not write the result of {result.item_id} to "
                           f"{recorder.run.run_dir.experiments_dir}: {exc}")
        return
    recorder.extra["written"] = True
    relative = recorder.run.run_dir.relative(path)
    report.user_properties.append((LEM_RESULT_PROPERTY, {"path": relative, "status": result.status, "error": result.error}))
    item.config.hook.pytest_lem_result(config=item.config, result=result)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Session end: unload the resident backend sessions."""
    backends = session_of(session.config).backends
    if backends is not None:
        backends.close()
