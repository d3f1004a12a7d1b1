"""A campaign's ``search:``: race the experiments on the ordinary campaign items (every backend, resume, xdist).

Items are collected for every configuration and cycle (round), cycle by cycle. Before an item of round
r runs, the race is computed from the results on disk of rounds < r (``results.search.race``: a pure
function of those files) and the item is skipped, with the reason, when its configuration has left
the race or the race has stopped. Dropped configurations' results stay on disk and in the summary.

xdist: before a round-r item runs, its worker waits until every selected item of earlier rounds has
finished (the controller writes ``search/finished/<session>/<key>`` after each item's last report, a
crash included), so every worker decides from the same files. Items reach each worker in collection
order (cycle-major), so the earliest unfinished item can always run: the wait cannot deadlock.
Resume: the race is recomputed from the files, so a resumed run continues mid-race.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.config.search import find_reference
from pytest_llenergy.plugin.base import campaign_item
from pytest_llenergy.plugin.options import resolve
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.state import LemRun
from pytest_llenergy.plugin.xdist import is_worker
from pytest_llenergy.results.schema import result_key
from pytest_llenergy.results.search import RaceState, race
from pytest_llenergy.results.search_data import ObservationCache, SearchSpec, write_spec
from pytest_llenergy.results.store import atomic_write_bytes

MAX_WAIT_S = 6 * 3600.0


def search_spec(run: LemRun) -> SearchSpec | None:
    campaign = run.plan.campaign
    if campaign.search is None:
        return None
    reference, _ = find_reference(campaign, run.plan.experiments)
    return SearchSpec(campaign.search, [e.id for e in run.plan.experiments], reference[0] if reference else "",
                      run.cycles)


class SearchPlugin:
    """Every process: skips the items of dropped configurations; xdist workers wait for earlier rounds.
    The controller also records finished items and writes the spec."""

    def __init__(self, config: pytest.Config, run: LemRun, spec: SearchSpec, session: str) -> None:
        self.config, self.run, self.spec, self.session = config, run, spec, session
        self.cache = ObservationCache(spec.search)
        self.selected: set[tuple[str, int]] = set()
        self.keys = {item.id: result_key(item.experiment.id, item.cycle) for item in run.items()}
        self.states: dict[int, RaceState] = {}

    @property
    def finished_dir(self) -> Path:
        return self.run.run_dir.search_finished_dir / self.session

    def state(self, round_: int) -> RaceState:
        """The race before ``round_``, from the results of earlier rounds (cached once earlier rounds are final)."""
        if round_ not in self.states:
            obs = self.cache.read([self.run.run_dir.path], set(self.spec.configs))
            self.states[round_] = race(self.spec.rules, self.spec.configs, obs, until_round=round_)
        return self.states[round_]

    # -- every process ------------------------------------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        found = (campaign_item(item) for item in session.items)
        self.selected = {(c.experiment.id, c.cycle) for c in found if c is not None}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        citem = campaign_item(item)
        if citem is not None and hasattr(self.config, "workerinput"):
            self.wait_for_rounds_before(citem.cycle)
        return (yield)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        citem = campaign_item(item)
        if citem is None or citem.cycle == 1:
            return
        reason = self.state(citem.cycle).skip_reason(citem.experiment.id)
        if reason is not None:
            pytest.skip(reason)

    def wait_for_rounds_before(self, round_: int) -> None:
        pending = {(e, c) for e, c in self.selected if c < round_}
        deadline, pause = time.monotonic() + MAX_WAIT_S, 0.02
        while pending:
            pending = {(e, c) for e, c in pending if not (self.finished_dir / result_key(e, c)).exists()}
            if not pending:
                break
            if time.monotonic() > deadline:
                first = min(pending, key=lambda k: (k[1], k[0]))
                pytest.fail(f"llenergy: search: round {round_} waited {MAX_WAIT_S / 3600:.0f} h for {len(pending)} "
                            f"item(s) of earlier rounds (first: {result_key(*first)}); is the controller alive?")
            time.sleep(pause)  # polling the shared run directory: the other workers' items are the event
            pause = min(pause * 1.5, 1.0)

    # -- controller -----------------------------------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if is_worker(self.config) or report.when not in ("teardown", "???"):
            return
        node = report.nodeid
        key = self.keys.get(node[node.rfind("[") + 1:-1]) if node.endswith("]") else None
        if key is not None:
            atomic_write_bytes(self.finished_dir / key, b"")

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """The spec beside the results (after ``--lem-resume`` chose the run directory), for the report."""
        if not is_worker(self.config) and not self.config.option.collectonly:
            write_spec(self.run.run_dir.path, self.spec)

    def pytest_lem_summary(self, config: pytest.Config, summary: Any) -> None:
        from pytest_llenergy.results.search_report import search_lines

        if getattr(summary, "search", None) is not None:
            self.lines = search_lines(summary.search, config.get_verbosity())

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if getattr(self, "lines", None):
            terminalreporter.section("llenergy search")
            for line in self.lines:
                terminalreporter.write_line(line)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["lem_search_session"] = self.session

    def pytest_report_collectionfinish(self, config: pytest.Config) -> list[str]:
        s, spec = self.spec.search, self.spec
        limits = "; ".join(map(str, s.constraints)) or "none"
        stop = [f"at most {s.stop.max_survivors} left", f"precision ±{s.stop.precision:.1%}"]
        if s.stop.gpu_budget_s is not None:
            stop.append(f"GPU budget {s.stop.gpu_budget_s:.0f} s")
        return [f"llenergy: search: racing {len(spec.configs)} configurations for at most {spec.max_rounds} rounds "
                f"(min {s.min_rounds}); minimise {s.objective}; constraints: {limits}",
                f"llenergy: search: drops with {s.confidence:.0%} confidence (moderated Welch / one-sample t on logs, Bonferroni over each configuration's tests per round); "
                f"stop: {', '.join(stop)}; reference {spec.reference}"]


def _check(config: pytest.Config, run: LemRun) -> None:
    if resolve(config, "lem_shard"):
        raise pytest.UsageError(f"llenergy: {run.plan.source}: search: a race needs every configuration in one run; "
                                "--lem-shard splits them (use xdist workers: -n N)")
    search = run.plan.campaign.search
    if search is not None and run.cycles < search.min_rounds:
        raise pytest.UsageError(f"llenergy: --lem-cycles {run.cycles} is below search.min_rounds ({search.min_rounds}): "
                                "cycles is the most rounds a search runs")
    if run.order == "grouped":
        raise pytest.UsageError("llenergy: --lem-order grouped: a search runs round by round (interleaved or shuffled)")


def start(session: LemSession) -> None:
    """Configure step: when the campaign races configurations, check the run suits a race and start it."""
    config, run = session.config, session.run
    spec = search_spec(run) if run is not None else None
    if run is None or spec is None:
        return
    _check(config, run)
    worker_input = getattr(config, "workerinput", None)
    race_id = str(worker_input.get("lem_search_session", "")) if worker_input is not None else ""
    if not race_id:
        race_id = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    plugin = SearchPlugin(config, run, spec, race_id)
    session.search = plugin
    config.pluginmanager.register(plugin, "llenergy-search")
