"""README samples come from a real run and tox.ini, and drift is caught (issue 26, finding 9)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_readme_sample.py"


def _script():
    spec = importlib.util.spec_from_file_location("gen_readme_sample", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_sample_and_tox_envs_are_current():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_check_catches_an_edited_readme_and_a_changed_table(tmp_path, monkeypatch):
    gen = _script()
    readme = tmp_path / "README.md"
    readme.write_text(gen.README.read_text().replace("`tox` runs py311, py312,", "`tox` runs py311,"))
    monkeypatch.setattr(gen, "README", readme)
    assert any("README.md's generated blocks are stale" in p for p in gen.check())
    kept = tmp_path / "kept"
    (kept / "run").mkdir(parents=True)
    (kept / "run" / "manifest.json").write_text((gen.KEPT / "run" / "manifest.json").read_text())
    (kept / "run" / "experiments").symlink_to(gen.KEPT / "run" / "experiments")
    terminal = (gen.KEPT / "terminal.txt").read_text()
    (kept / "terminal.txt").write_text(terminal.replace("method coverage", "coverage method"))  # another format
    monkeypatch.setattr(gen, "KEPT", kept)
    assert any("prints differently today" in p for p in gen.check())


def test_the_sample_shows_what_a_real_run_printed():
    gen = _script()
    terminal = (gen.KEPT / "terminal.txt").read_text().splitlines()
    block = gen.sample_block(terminal)
    assert "method coverage" in block and "llenergy: campaign quickstart" in block
    assert all(line in terminal for line in block.splitlines()[2:-2] if not line.startswith("====="))
