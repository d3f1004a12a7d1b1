"""The parameter surface: docs/parameters.md freshness, curated coverage, paths that exist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llenergy.backends.introspection import (
    CURATED,
    coverage,
    curated,
    format_coverage_report,
    parameters,
    render_parameters_doc,
)
from pytest_llenergy.config.experiment import ExperimentConfig
from pytest_llenergy.config.paths import check_path
from pytest_llenergy.config.sections import BACKEND_SECTIONS

ROOT = Path(__file__).resolve().parents[2]


def test_parameters_doc_is_current():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_parameters_doc.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (ROOT / "docs" / "parameters.md").read_text() == render_parameters_doc()


def test_every_parameter_path_is_a_real_config_path():
    params = parameters()
    assert {p.section for p in params} == {"common", *BACKEND_SECTIONS}
    paths = [p.path for p in params]
    assert len(paths) == len(set(paths))
    for param in params:
        assert check_path(ExperimentConfig, param.path) is None, param.path
        assert param.description, f"{param.path} has no description"


def test_parameter_rows_carry_type_default_constraints():
    rows = {p.path: p for p in parameters("transformers")}
    beams = rows["transformers.num_beams"]
    assert (beams.type, beams.default, beams.constraints) == ("int", "1", ">= 1, <= 64")
    assert rows["transformers.quantization.load_in_4bit"].default == "False"
    assert "transformers.quantization" not in rows  # a pure sub-model is expanded, not listed


@pytest.mark.parametrize("backend", sorted(curated()))
def test_curated_typed_paths_exist(backend):
    for param in CURATED[backend]:
        if param.typed_path is not None:
            assert check_path(ExperimentConfig, param.typed_path) is None, f"{backend}: {param.typed_path}"
        assert param.reason, f"{backend}: {param.name} has no reason"


def test_transformers_curated_reasons_are_one_line():
    for param in CURATED["transformers"]:
        assert param.reason.endswith(".") and len(param.reason) < 140, param.name


def test_transformers_coverage_meets_target():
    typed, total, missing = coverage("transformers")
    assert total >= 40
    assert typed / total >= 0.95
    assert typed + len(missing) == total
    report = format_coverage_report("transformers")
    assert report.startswith(f"transformers: {typed}/{total}")
    for param in missing:
        assert param.name in report
    assert format_coverage_report(None).startswith("transformers:")
    with pytest.raises(KeyError, match="no curated parameter list"):
        coverage("nope")


@pytest.mark.slow
def test_h200_validation_script_runs_without_pydantic(tmp_path):
    """The GPU validation script's --quick dry run, with pydantic made unimportable."""
    out = tmp_path / "dry.json"
    blocker = (
        "import runpy, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pydantic', 'pydantic_core'):\n"
        "            raise ImportError('pydantic blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.argv = ['validate', '--quick', '--models', 'tiny-llama', '--batch-sizes', '2', '--out', {str(out)!r}]\n"
        f"runpy.run_path({str(ROOT / 'scripts' / 'validate_h200_backend.py')!r}, run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import json

    report = json.loads(out.read_text())
    assert [r["exact_counts"] for r in report["results"]] == [True]
    assert "| tiny-llama |" in proc.stdout
