"""Required components (LEM_REQUIRE): a pytest plugin, loaded by ``tests/conftest.py``.

Tests that need a real component outside Python's reach (a Docker daemon, Chromium, vLLM...) carry
``@pytest.mark.requires("name")`` (or add it from a fixture) and skip with the reason where it is
missing, so a developer's machine stays green. CI names the components it installed in
``LEM_REQUIRE=docker,compose,...``: there a skip of such a test is turned into a failure that names
the component, and a named component that no test of the session used fails the session.
``pytest.importorskip("X")`` counts as ``requires("X")``. Under pytest-xdist the workers mark each
report with the components it used; the controller gathers them and judges the whole session.
"""

from __future__ import annotations

import os
import re

import pytest

_IMPORTORSKIP = re.compile(r"could not import '([\w.]+)'")


def required_components() -> set[str]:
    """The components named in ``LEM_REQUIRE`` (comma or space separated)."""
    return {part.strip() for part in re.split(r"[,\s]+", os.environ.get("LEM_REQUIRE", "")) if part.strip()}


def item_components(item: pytest.Item, reason: str = "") -> set[str]:
    """Components ``item`` needs: its ``requires`` markers, plus a module an importorskip missed."""
    names = {str(name) for mark in item.iter_markers("requires") for name in mark.args}
    match = _IMPORTORSKIP.search(reason)
    if match:
        names.add(match.group(1).split(".")[0])
    return names


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*components): needs real components; LEM_REQUIRE turns their skips into failures")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    required = required_components()
    if not required:
        return report
    reason = _skip_reason(report) if report.skipped else ""
    needs = item_components(item, reason) & required
    if report.skipped and needs and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (f"LEM_REQUIRE: required component {', '.join(sorted(needs))} missing: this test "
                           f"skipped instead of using it.\nSkip reason: {reason}")
    elif needs and report.when == "call":
        report.user_properties.append(("lem_used_components", sorted(needs)))  # travels from xdist workers
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == "lem_used_components":
            _used.update(value)


_used: set[str] = set()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    required = required_components()
    if not required or session.config.option.collectonly or hasattr(session.config, "workerinput"):
        return
    unused = sorted(required - _used)
    if unused and session.testscollected:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"LEM_REQUIRE: no test of this session used {', '.join(unused)} "
                                "(required components must be exercised)", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
