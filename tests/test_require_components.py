"""LEM_REQUIRE (``require_components.py``) holds under pytest-xdist, as the README's command runs it (-n 2).

The workers run the tests; the controller must still fail a skipped required test and a session in
which no worker used a required component, and must count a component used on any worker as used.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = '''
import subprocess

import pytest


@pytest.mark.requires("alpha")
def test_uses_alpha():
    subprocess.run(["alpha"], check=True)  # a fake program on PATH: the test goes through the component


@pytest.mark.requires("beta")
def test_skips_beta():
    pytest.skip("beta is not installed here")


def test_plain():
    pass
'''

pytestmark = [pytest.mark.slow, pytest.mark.requires("xdist"),
              pytest.mark.skipif("not __import__('importlib').util.find_spec('xdist')", reason="pytest-xdist is not installed")]


def fake_program(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """An executable ``name`` on PATH that does nothing."""
    program = pytester.mkdir("bin") / name if not (pytester.path / "bin").exists() else pytester.path / "bin" / name
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(program.parent), prepend=os.pathsep)


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_components=TESTS)
    fake_program(pytester, monkeypatch, "alpha")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent), prepend=":")
    monkeypatch.setenv("LEM_REQUIRE", required)
    return pytester.runpytest_subprocess("-p", "require_components", "-n", "2", "-p", "no:cacheprovider", *args)


def test_a_skipped_required_test_fails_under_xdist(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, "alpha,beta")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*2 workers*"])
    result.stdout.fnmatch_lines(["*LEM_REQUIRE: required component beta missing: this test skipped*"])
    result.stdout.fnmatch_lines(["*FAILED*test_skips_beta*"])
    result.stdout.fnmatch_lines(["*LEM_REQUIRE: no test of this session used beta *"])  # alpha counts: used on a worker


def test_a_required_component_no_worker_used_fails_the_session(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, "alpha,gamma", "-k", "not beta")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*2 workers*"])
    result.stdout.fnmatch_lines(["*LEM_REQUIRE: no test of this session used gamma *"])  # alpha is not named
    used = _run(pytester, monkeypatch, "alpha", "-k", "not beta")
    assert used.ret == pytest.ExitCode.OK  # the component used on a worker counts at the controller
