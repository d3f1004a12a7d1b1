"""No PytestAssertRewriteWarning under an editable install, so a ``filterwarnings = error`` project runs.

pytest marks for assertion rewriting, up front, the modules each ``pytest11`` distribution lists;
an editable install (``pip install -e``) lists none of the package's modules. The runs below
reproduce that in a subprocess whatever the install here: a throwaway ``.dist-info`` whose
``pytest11`` entry point loads ``pytest_llenergy.plugin`` from this checkout and whose RECORD lists
only a ``.pth`` file (what setuptools writes for ``pip install -e``), with pytest's up-front
marking limited to the modules RECORDs list (no installed copy of this package can mark it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Marks what the distributions' RECORDs list, except this package (the editable case), then runs pytest.
DRIVER = textwrap.dedent("""
    import sys
    import _pytest.config as config

    original = config.Config._mark_plugins_for_rewrite

    def editable_marking(self, hook, disable_autoload):
        real = hook.mark_rewrite
        hook.mark_rewrite = lambda *names: real(*[n for n in names if n.split(".")[0] != "pytest_llenergy"])
        try:
            original(self, hook, disable_autoload)
        finally:
            hook.mark_rewrite = real

    config.Config._mark_plugins_for_rewrite = editable_marking
    import pytest
    sys.exit(pytest.main(sys.argv[1:]))
""")


def editable_dist(site: Path) -> None:
    """A ``.dist-info`` as ``pip install -e`` leaves it: the entry point, and no module in RECORD."""
    info = site / "pytest_llenergy_editable_probe-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pytest-llenergy-editable-probe\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nllenergy = pytest_llenergy.plugin\n")
    (info / "RECORD").write_text("__editable__.pytest_llenergy_editable_probe-0.0.pth,,\n"
                                 "pytest_llenergy_editable_probe-0.0.dist-info/RECORD,,\n")


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site = project / "site"
    editable_dist(site)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    return subprocess.run([sys.executable, "-c", DRIVER, *args], cwd=project, env=env, text=True,
                          capture_output=True, timeout=300)


@pytest.fixture
def strict_project(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    (tmp_path / "test_plain.py").write_text(textwrap.dedent("""
        def test_window(energy):
            with energy.measure("w") as w:
                sum(range(1000))
            w.record(output_tokens=1)
    """))
    return tmp_path


def test_strict_project_runs_a_plain_energy_test(strict_project: Path) -> None:
    result = run(strict_project, "-q", "-p", "no:cacheprovider", "--lem-energy-source", "estimate")
    output = result.stdout + result.stderr
    assert "PytestAssertRewriteWarning" not in output
    assert result.returncode == 0, output
    assert "1 passed" in output


def test_version_prints_no_warning(tmp_path: Path) -> None:
    result = run(tmp_path, "--version", "-W", "default")
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stdout + result.stderr
    assert "llenergy" in run(tmp_path, "--help").stdout  # the plugin was loaded through the entry point
