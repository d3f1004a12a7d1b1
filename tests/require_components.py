"""Required components (LEM_REQUIRE): a pytest plugin, loaded by ``tests/conftest.py``.

Tests that need a real component outside Python's reach (a Docker daemon, Chromium, vLLM...) carry
``@pytest.mark.requires("name")`` (or add it from a fixture) and skip with the reason where it is
missing, so a developer's machine stays green. CI names the components it installed in
``LEM_REQUIRE=docker,compose,...``; there:

- a skip of such a test fails, naming the component; ``pytest.importorskip("X")`` counts as
  ``requires("X")``, and so does a module-level skip or importorskip whose reason names a required
  component (the module's collection fails);
- a named component that no test of the session *used* fails the session. A test used a component
  when it passed and went through it during setup or call: it started a process of that name
  (``REACHED_BY``: the program or a word of its command line, e.g. ``docker compose``), or, for a
  Python package (torch, vllm, xdist...), that package's code ran. A test that returned early, or
  failed, does not count.

Under pytest-xdist the workers mark each report with the components it used; the controller gathers
them and judges the whole session.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any

import pytest

_IMPORTORSKIP = re.compile(r"could not import '([\w.]+)'")
USED = "lem_used_components"
#: names a component's processes go by (the program, or a word of the command line); default: its own name
REACHED_BY: dict[str, tuple[str, ...]] = {
    "chromium": ("chromium", "chromium-browser", "chrome", "google-chrome"),
    "slurm": ("slurm", "sbatch", "srun", "salloc", "squeue", "sinfo", "scontrol", "slurmctld", "slurmd"),
    "xdist": ("xdist", "-n", "--numprocesses"),
}


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


def reason_components(reason: str, required: set[str]) -> set[str]:
    """Required components a skip reason names: an importorskip's module, or the component as a word."""
    match = _IMPORTORSKIP.search(reason)
    named = {match.group(1).split(".")[0]} if match else set()
    named |= {c for c in required if re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", reason)}
    return named & required


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


class Reach:
    """What one test touched while it ran: process words (audit events) and Python packages (a profile
    hook that stops as soon as every package asked for was seen)."""

    def __init__(self, packages: dict[str, list[str]]) -> None:
        self.words: set[str] = set()
        self.packages = packages  # name -> its directories
        self.seen: set[str] = set()

    def add_command(self, program: Any, argv: Any) -> None:
        words = argv.split() if isinstance(argv, str | bytes) else list(argv or [])
        for word in [program, *words]:
            if word is not None:
                text = os.fsdecode(word) if isinstance(word, bytes | os.PathLike) else str(word)
                self.words.update({text, os.path.basename(text)})

    def profile(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            where = frame.f_code.co_filename
            hit = [n for n, dirs in self.packages.items() if any(where.startswith(d) for d in dirs)]
        elif event == "c_call":
            module = getattr(arg, "__module__", None)
            module = module if isinstance(module, str) else ""  # some builtins name a module object
            hit = [n for n in self.packages if module == n or module.startswith(n + ".")]
        else:
            return
        if hit:
            self.seen.update(hit)
            for name in hit:
                self.packages.pop(name)
            if not self.packages:
                sys.setprofile(None)
                threading.setprofile(None)  # type: ignore[arg-type]

    def reached(self, component: str) -> bool:
        return component in self.seen or bool(self.words & set(REACHED_BY.get(component, (component,))))


_current: Reach | None = None
_AUDITED = ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    reach = _current
    if reach is None or event not in _AUDITED:
        return
    if event == "os.system":
        reach.add_command(None, args[0])
    elif event == "os.spawn":
        reach.add_command(args[1], args[2])
    else:
        reach.add_command(args[0], args[1])


def _package_dirs(name: str) -> list[str] | None:
    """A Python package's directories, or None when the component is not one (a program)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    dirs = list(spec.submodule_search_locations or [])
    return [os.path.join(d, "") for d in dirs] or ([spec.origin] if spec.origin else None)


def _start(needs: Iterable[str]) -> Reach:
    global _current
    packages = {n: d for n in needs if (d := _package_dirs(n)) is not None}
    reach = _current = Reach(packages)
    if packages:
        sys.setprofile(reach.profile)
        threading.setprofile(reach.profile)
    return reach


def _stop() -> None:
    global _current
    _current = None
    sys.setprofile(None)
    threading.setprofile(None)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*components): needs real components; LEM_REQUIRE turns their skips into failures")
    if required_components() and not getattr(sys, "_lem_require_audit", False):
        sys.addaudithook(_audit)  # for good: an audit hook cannot be removed; idle outside a test
        sys._lem_require_audit = True  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    needs = item_components(item) & required_components()
    item.stash[_REACH] = _start(needs) if needs else None
    try:
        return (yield)
    finally:
        if needs:
            _stop()


_REACH = pytest.StashKey["Reach | None"]()


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
    elif needs and report.when == "call" and report.passed:
        reach = item.stash.get(_REACH, None)
        used = sorted(c for c in needs if reach is not None and reach.reached(c))
        if used:
            report.user_properties.append((USED, used))  # travels from xdist workers
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    report = yield
    required = required_components()
    if required and report.skipped:
        reason = _skip_reason(report)
        named = reason_components(reason, required)
        if named:
            report.outcome = "failed"
            report.longrepr = (f"LEM_REQUIRE: required component {', '.join(sorted(named))} missing: "
                               f"{collector.nodeid or collector.name} skipped at module level.\nSkip reason: {reason}")
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == USED:
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
                                "(required components must be exercised: a passed test that went through them)",
                                red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
