"""A crashed xdist worker's test is rerun once (crash_reruns.py); a failing test is not rerun,
and a test that crashes every time fails."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

CONFTEST = """
from crash_reruns import rerun_crashed_tests_once

def pytest_configure(config):
    rerun_crashed_tests_once(config)
"""

CRASHING = """
import os, signal
from pathlib import Path

def test_crashes_once(tmp_path_factory):
    mark = Path({mark!r})
    if not mark.exists():
        mark.write_text("crashed")
        os.kill(os.getpid(), signal.SIGSEGV)

def test_fails():
    assert 1 == 2

def test_passes():
    pass
"""


@pytest.mark.slow
@pytest.mark.requires("xdist")
def test_a_crash_is_rerun_once_and_a_failure_is_not(pytester: pytest.Pytester, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_crash=CRASHING.format(mark=str(tmp_path / "crashed")))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("failed"), outcomes.get("rerun")) == (2, 1, 1), outcomes
    assert (tmp_path / "crashed").exists()
    result.stdout.fnmatch_lines(["*node down*"])  # the crash is reported, then the test reruns and passes



CRASHES_ALWAYS = """
import os, signal

def test_crashes_always():
    os.kill(os.getpid(), signal.SIGSEGV)
"""


@pytest.mark.slow
@pytest.mark.requires("xdist")
def test_a_test_that_crashes_twice_fails(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_always=CRASHES_ALWAYS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("failed"), outcomes.get("rerun")) == (1, 1), outcomes
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*crashed while running*test_crashes_always*"])
