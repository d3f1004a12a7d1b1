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
