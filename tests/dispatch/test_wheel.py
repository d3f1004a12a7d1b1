"""The wheel ships the docker files, and an installed wheel (no clone) finds and uses them.

Builds the wheel from a copy of the source (offline: the build backend installed here), lists it,
installs it into a fresh virtual environment and runs ``lem`` from a folder outside any checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import pytest_llenergy
from pytest_llenergy.dispatch.files import SHIPPED, docker_dir

ROOT = Path(pytest_llenergy.__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment (~20 s)


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "pytest_llenergy", src / "pytest_llenergy",
                    ignore=shutil.ignore_patterns("__pycache__", "secrets.env"))
    (src / "pytest_llenergy" / "docker" / "secrets.env").write_text("HF_TOKEN=hf_must_never_be_packaged\n")
    out = tmp_path_factory.mktemp("whl")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
          str(out), str(src)], cwd=src)
    (found,) = out.glob("pytest_llenergy-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the wheel installed (its dependencies from this interpreter's site)."""
    path = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(path)], cwd=path)
    _run([str(path / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=path)
    return path


def _outside(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder outside any checkout, and an environment that imports nothing from this one."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return elsewhere, env


def test_wheel_holds_every_docker_file_and_no_secret(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    docker = sorted(n.removeprefix("pytest_llenergy/docker/") for n in names if n.startswith("pytest_llenergy/docker/"))
    assert docker == sorted(SHIPPED), f"the wheel's pytest_llenergy/docker/ holds {docker}"
    assert not any("secrets" in n for n in names)
    assert sorted(SHIPPED) == sorted(p.name for p in docker_dir().iterdir() if p.name not in (".gitignore", "secrets.env"))


def test_installed_wheel_finds_its_docker_files_from_outside_a_checkout(venv, tmp_path):
    elsewhere, env = _outside(tmp_path)
    python = str(venv / "bin" / "python")
    probe = ("import json, pytest_llenergy; from pytest_llenergy.dispatch.files import docker_dir, missing_files; "
             "print(json.dumps([pytest_llenergy.__file__, str(docker_dir()), missing_files()]))")
    module, folder, missing = json.loads(_run([python, "-c", probe], elsewhere, env).stdout)
    site = Path(module).parent.parent
    assert Path(module).resolve().is_relative_to(venv.resolve()), f"imported {module}, not the installed wheel"
    assert Path(folder) == site / "pytest_llenergy" / "docker" and missing == []
    doctor = json.loads(_doctor(venv, elsewhere, env))
    (check,) = [c for c in doctor["checks"] if c["name"] == "docker files"]
    assert check["status"] == "ok" and check["detail"].startswith(folder)


def _doctor(venv: Path, cwd: Path, env: dict[str, str]) -> str:
    """``lem doctor --json`` (exit 1 means "not ready", still a full report)."""
    done = subprocess.run([str(venv / "bin" / "lem"), "doctor", "--json"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_installed_lem_help_and_version(venv, tmp_path):
    elsewhere, env = _outside(tmp_path)
    lem = str(venv / "bin" / "lem")
    assert "doctor" in _run([lem, "--help"], elsewhere, env).stdout
    assert pytest_llenergy.__version__ in _run([lem, "--version"], elsewhere, env).stdout
