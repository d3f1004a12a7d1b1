"""Keeps installed libraries loaded across pytester's in-process runs.

pytester restores ``sys.modules`` after each in-process run, dropping every module first imported
during it, so that a test's own files are imported afresh by the next run. For a library with a C
extension that is harmful: its shared object stays loaded while its Python modules go, and importing
it again re-runs the package against the live extension. For torch that corrupts memory. Here
``import torch``, dropped and imported again in one process, raises ``SystemError: <garbage>()
method: bad call flags``, and xdist workers died of general protection faults in libpython's garbage
collector afterwards (CI once failed on the first; ``crash_reruns.py`` handles the second).

So the snapshots pytester takes keep, in addition, every module of the standard library or an
installed distribution (site-packages), with the file-less modules such a package registers
(``torch._C._nn``, ...). Test files, conftests and this project's own modules
(an editable install, outside site-packages) are still dropped, as pytester intends.
"""

from __future__ import annotations

import functools
import os
import site
import sys
import sysconfig
from collections.abc import Callable
from types import ModuleType

import pytest
from _pytest import pytester as _pytester

_LIBRARY_DIRS = tuple({os.path.realpath(p) for p in (
    *(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")),
    *site.getsitepackages(),
)})


def is_installed_library(module: ModuleType | None) -> bool:
    """Whether ``module`` was loaded from the standard library or site-packages."""
    path = getattr(module, "__file__", None)
    return bool(path) and _in_library_dirs(path)


@functools.cache
def _in_library_dirs(path: str) -> bool:  # cached: a restore asks for every loaded module (~7,000)
    resolved = os.path.realpath(path)
    return any(resolved == d or resolved.startswith(d + os.sep) for d in _LIBRARY_DIRS)


def belongs_to_installed_library(name: str) -> bool:
    """Whether ``sys.modules[name]`` is an installed library's module: loaded from a library file, or
    made in memory (no file: torch's ``torch._C._nn``, ...) inside an installed library's package."""
    module = sys.modules.get(name)
    if is_installed_library(module):
        return True
    top = name.partition(".")[0]
    return module is not None and top != name and getattr(module, "__file__", None) is None \
        and is_installed_library(sys.modules.get(top))


class KeepInstalledLibraries(_pytester.SysModulesSnapshot):
    """pytester's ``sys.modules`` snapshot that also keeps installed libraries on restore."""

    def __init__(self, preserve: Callable[[str], bool] | None = None) -> None:
        def keep(name: str) -> bool:
            return bool(preserve and preserve(name)) or belongs_to_installed_library(name)

        super().__init__(preserve=keep)


def keep_installed_libraries(config: pytest.Config) -> None:
    """Make every pytester snapshot of this session keep installed libraries."""
    if not isinstance(getattr(_pytester, "SysModulesSnapshot", None), type):
        raise pytest.UsageError("tests/kept_modules.py: _pytest.pytester.SysModulesSnapshot is gone; "
                                "update it for this pytest version")
    if not issubclass(_pytester.SysModulesSnapshot, KeepInstalledLibraries):
        _pytester.SysModulesSnapshot = KeepInstalledLibraries  # type: ignore[misc]
