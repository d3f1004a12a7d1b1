"""The installed plugin costs a run that does not use it (nearly) nothing (issue 26, finding 7).

Timings live in benchmarks/bench_plugin_import.py; here: which libraries a plain run imports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "scipy", "numpy", "pydantic", "matplotlib", "pyarrow", "yaml", "torch", "transformers")
CONFTEST = f'''
import json, sys

def pytest_sessionfinish(session):
    with open("modules.json", "w") as f:
        json.dump({{"heavy": [m for m in {HEAVY!r} if m in sys.modules],
                    "ours": sorted(m for m in sys.modules if m.startswith("pytest_llenergy"))}}, f)
'''


def _run(folder: Path, test: str, *args: str) -> dict:
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "test_x.py").write_text(test)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                           "-p", "no:benchmark", *args, "test_x.py"], cwd=folder, capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"stdout": proc.stdout, **json.loads((folder / "modules.json").read_text())}


@pytest.mark.slow
def test_a_plain_run_imports_nothing_heavy_and_a_run_that_uses_the_plugin_loads_it(tmp_path):
    plain = _run(tmp_path, "def test_a():\n    assert 1\n")
    assert plain["heavy"] == [], plain["heavy"]
    assert "pytest_llenergy.plugin.measurement.fixture" not in plain["ours"]
    used = _run(tmp_path, "def test_a(energy):\n    with energy.measure('w'):\n        pass\n",
                "--lem-energy-source", "estimate")
    assert "pytest_llenergy.plugin.measurement.fixture" in used["ours"] and "numpy" in used["heavy"]
    assert "energy window(s) in plain tests" in used["stdout"]
    lazy = _run(tmp_path, "def test_a(energy):\n    with energy.measure('w'):\n        pass\n")  # no option
    assert "energy window(s) in plain tests" in lazy["stdout"]


def test_the_option_table_matches_the_campaign_schema():
    from pytest_llenergy.config.fields import field_choices, field_default
    from pytest_llenergy.plugin.option_table import FIELDS
    from pytest_llenergy.plugin.options import OPTIONS

    expected = {o.campaign: (field_default(o.campaign), field_choices(o.campaign)) for o in OPTIONS if o.campaign}
    assert FIELDS == expected, "put this in plugin/option_table.py: FIELDS = " + repr(expected)


def test_constants_kept_light_agree_with_their_sources():
    from pytest_llenergy.dispatch.worker import SERVE_FLAG
    from pytest_llenergy.plugin import activation, options
    from pytest_llenergy.results.compare import DEFAULT_ALPHA

    assert options.DEFAULT_ALPHA == DEFAULT_ALPHA and activation.SERVE_FLAG == SERVE_FLAG
