"""Writing files so that a reader never sees a partial one, and a crash right after leaves the whole
new file or the whole old one (the one atomic write of the package; energy/, results/ and backends/ use it)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], object], mode: int = 0o644) -> Path:
    """``write(temp)`` into a hidden temp file beside ``path``; flush it to disk (fsync), give it
    ``mode``, rename it over ``path`` in one step, then fsync the folder where the OS allows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # owner-only until renamed
    os.close(fd)
    partial = Path(name)
    try:
        write(partial)
        _fsync(partial, os.O_RDONLY)
        os.chmod(partial, mode)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    try:
        _fsync(path.parent, os.O_RDONLY)  # the rename itself survives a crash
    except OSError:
        pass  # a folder cannot be opened for fsync on some systems (Windows)
    return path


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomically`)."""
    return write_atomically(path, lambda partial: partial.write_bytes(data), mode)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
