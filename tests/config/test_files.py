"""The one atomic write: temp file beside the target, fsync'd before the rename, folder fsync'd after,
the requested mode, nothing left behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pytest_llenergy.config import files
from pytest_llenergy.config.files import atomic_write_bytes, write_atomically


def test_the_data_is_fsynced_before_the_rename_and_the_folder_after(tmp_path: Path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        assert Path(src).parent == Path(dst).parent  # a rename within one folder (one file system)
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    target = tmp_path / "run" / "result.json"
    assert atomic_write_bytes(target, b"{}") == target
    assert target.read_bytes() == b"{}" and events == ["fsync-file", "rename", "fsync-dir"]


def test_mode_is_applied_and_a_failed_write_leaves_the_old_file(tmp_path: Path):
    target = tmp_path / "secrets.env"
    write_atomically(target, lambda p: p.write_text("A=1\n"), mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write_bytes(target, b"B=2\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644

    def failing(p: Path) -> None:
        p.write_text("partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, failing)
    assert target.read_text() == "B=2\n" and [p.name for p in tmp_path.iterdir()] == ["secrets.env"]
