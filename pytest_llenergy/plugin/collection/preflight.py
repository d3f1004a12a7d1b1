"""Checks before the first item: mistakes that would otherwise fail inside every item.

After collection, once: each experiment's model (a shipped architecture or local config for
random weights; a local directory or the Hugging Face cache, never a hub lookup:
``backends.checks``, shared with ``lem config show``), its prompt file, the energy source (for campaign
items and plain tests using the ``energy`` fixture) and the directories results go to. Every
problem is one ``llenergy:`` line; together they are a usage error (exit 4, no traceback).
Under pytest-xdist the controller checks the results directory before any worker starts; each
worker checks what it collected, keeps no item when something is wrong and hands its lines to
the controller, which reports them once: no worker measures a campaign known to be bad.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llenergy.backends import checks
from pytest_llenergy.config import Experiment
from pytest_llenergy.plugin.base import (
    campaign_item,
    dispatch_mode,
    get_run,
    output_problems,
    session_of,
)
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.xdist import is_worker

PLUGIN_SESSION_MODULE = "pytest_llenergy.plugin.measurement.runtest"


def loads_with_plugin_session(item: pytest.Item) -> bool:
    """Whether the item's ``lem_session`` is the plugin's own (a test's own fixture loads nothing of ours)."""
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}).get("lem_session")
    func = getattr(defs[-1], "func", None) if defs else None
    return getattr(func, "__module__", None) == PLUGIN_SESSION_MODULE


def experiment_problems(items: list[pytest.Item], base_dir: str | None) -> list[str]:
    seen: dict[str, Experiment] = {}
    for item in items:
        citem = campaign_item(item)
        if citem is not None and loads_with_plugin_session(item):
            seen.setdefault(citem.experiment.id, citem.experiment)
    return checks.experiment_problems(seen.values(), base_dir)


def source_problem(config: pytest.Config) -> str | None:
    try:
        session_of(config).measurement().ensure_source()
    except pytest.UsageError as exc:
        return str(exc).removeprefix("llenergy: ")
    return None


def problems_for(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    run = get_run(config)
    measured = any(campaign_item(i) is not None or "energy" in getattr(i, "fixturenames", ()) for i in items)
    local = run is None or dispatch_mode(config, run) == "local"  # containers have their own models and files
    problems: list[Any] = experiment_problems(items, run.plan.base_dir) if run is not None and local else []
    if measured:
        problems.append(source_problem(config))
    if not config.option.collectonly:
        problems += output_problems(config, measured)
    return [p for p in problems if p]


WORKER_PROBLEMS = "lem_preflight"
"""``workeroutput`` key: an xdist worker's problems, for the controller to report once."""
WORKER_DOCKER_PROBLEMS = "lem_preflight_docker"
"""``workeroutput`` key: the docker preflight's problems of an xdist worker (docker mode)."""


def _usage_error(problems: list[str], docker: list[str] | None = None) -> pytest.UsageError:
    """One line per problem; with docker dispatch's problems, all of them under one heading."""
    if docker:
        return pytest.UsageError("llenergy: docker dispatch cannot start:\n  " + "\n  ".join([*problems, *docker]))
    return pytest.UsageError(*[f"llenergy: {p}" for p in problems])


def docker_problems(config: pytest.Config) -> list[str]:
    """What the docker preflight (``plugin/dispatch/host.py``, which runs first) found, in docker mode."""
    return list(session_of(config).docker_problems)


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Without xdist: here, raising. Not in a dispatched container run (its host checked)."""
    config = session.config
    if is_worker(config):
        return
    problems, docker = problems_for(config, session.items), docker_problems(config)
    if problems or docker:
        raise _usage_error(problems, docker)


@pytest.hookimpl(tryfirst=True, specname="pytest_collection_finish")
def pytest_xdist_worker_collection_finish(session: pytest.Session) -> None:
    """An xdist worker checks what it collected before telling the controller its items: on a problem it
    keeps none (so nothing runs) and hands the lines to the controller, which reports them once."""
    config = session.config
    if not _xdist_worker(config):
        return
    problems, docker = problems_for(config, session.items), docker_problems(config)
    if problems or docker:
        config.workeroutput[WORKER_PROBLEMS] = problems  # type: ignore[attr-defined]
        config.workeroutput[WORKER_DOCKER_PROBLEMS] = docker  # type: ignore[attr-defined]
        session.items[:] = []


def check_outputs(session: LemSession) -> None:
    """Configure step: the results directory, before the header says where results go and before any
    worker starts (its error is the run's only output). Under docker dispatch it waits for the docker
    preflight, so that every problem an operator must fix is listed together."""
    config = session.config
    if not is_worker(config) and not _xdist_worker(config) and not config.option.collectonly:
        run = session.run
        if run is not None and dispatch_mode(config, run) != "local":
            return  # docker dispatch: reported with the docker preflight's problems, all in one pass
        problems = output_problems(config, measured=False)
        if problems:
            raise _usage_error(problems)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """The controller: a worker found problems (each worker finds the same: the first one's are reported)."""
    output = getattr(node, "workeroutput", {})
    problems, docker = output.get(WORKER_PROBLEMS), output.get(WORKER_DOCKER_PROBLEMS)
    if problems or docker:
        raise _usage_error(list(problems or []), list(docker or []))
