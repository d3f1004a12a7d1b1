"""The tracked tree travels to the GPU machine with every call, at most 64 MiB with what a call carries.

vLLM's wheels go over in parts of 37 MB (docs/validation/h200-vllm.md), so the tree must stay under
30 MB; derived files (report.html, plots) stay out of docs/validation/data (its README says how to
rebuild them).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT_BYTES = 30_000_000


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.fail(f"{ROOT} is not a git checkout: the tree's size cannot be checked")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_the_tree_that_travels_leaves_room_for_a_wheel_part() -> None:
    files = [p for p in tracked_files() if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    largest = sorted(files, key=lambda p: p.stat().st_size, reverse=True)[:5]
    assert total < LIMIT_BYTES, (
        f"tracked files: {total / 1e6:.1f} MB, over {LIMIT_BYTES / 1e6:.0f} MB; largest: "
        + ", ".join(f"{p.relative_to(ROOT)} ({p.stat().st_size / 1e6:.1f} MB)" for p in largest))


def test_derived_reports_stay_out_of_the_validation_data() -> None:
    derived = [p for p in tracked_files() if "docs/validation/data/" in p.as_posix()
               and (p.name == "report.html" or p.parent.name == "plots")]
    assert not derived, f"derived files tracked (lem report rebuilds them): {derived[:3]}"
