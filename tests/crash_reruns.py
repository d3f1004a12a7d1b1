"""Reruns, once, a test whose xdist worker crashed; never a test that failed.

The suite runs under ``-n 2``. Rarely (three times in seven hours of suite and mutation runs here) a
worker dies of a general protection fault inside libpython's garbage collector, in whichever test
it is running then, with no Python frame of ours involved. pytest-rerunfailures reschedules a
crashed test when its item allows a rerun; ``only_rerun`` with a pattern that matches nothing keeps
ordinary failures from being rerun. A test that crashes twice still fails, and the summary counts
the rerun, so a crash is reported rather than hidden.
"""

from __future__ import annotations

import pytest

NEVER_MATCHES = "(?!)"  # only_rerun: no failure message matches, so only crashes are rerun


def rerun_crashed_tests_once(config: pytest.Config) -> None:
    """Allow one rerun per test for crashes only, unless the command line set reruns itself."""
    if not config.pluginmanager.hasplugin("rerunfailures"):
        return
    if config.getoption("reruns", None) is None and not config.getoption("only_rerun", None):
        config.option.reruns = 1
        config.option.only_rerun = [NEVER_MATCHES]
