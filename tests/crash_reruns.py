"""Reruns, once, a test whose xdist worker crashed; never a test that failed.

A safety net. The crashes seen (general protection faults in libpython's garbage collector, in
whichever test ran next) came from torch imported twice in one worker after pytester dropped it;
``kept_modules.py`` removed that cause. Should a worker crash again, xdist reports its test as failed.
Here the controller puts it back in the queue the first time (its report becomes a ``rerun``, counted
in the summary, so a new cause is seen) and lets a second crash of the same test fail. Done with
xdist's own ``pytest_handlecrashitem`` hook: pytest-rerunfailures does the same but costs ~15 % of
the suite's time, talking to the controller for every test.
"""

from __future__ import annotations

from typing import Any

import pytest


class RerunCrashedOnce:
    """xdist controller plugin: reschedule each crashed test once."""

    def __init__(self) -> None:
        self.crashed: set[str] = set()

    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        if crashitem in self.crashed:
            return  # a second crash: the failure stands
        self.crashed.add(crashitem)
        sched.mark_test_pending(crashitem)
        report.outcome = "rerun"  # type: ignore[assignment]

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        if report.outcome == "rerun":
            return "rerun", "R", ("RERUN", {"yellow": True})
        return None


def rerun_crashed_tests_once(config: pytest.Config) -> None:
    """Register the plugin in an xdist controller (where crashes are handled)."""
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(RerunCrashedOnce(), "lem-rerun-crashed-once")
