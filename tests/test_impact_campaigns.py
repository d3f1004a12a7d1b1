"""The shipped parameter-impact campaigns (energy_suites/campaigns/impact/): each one is valid, varies
exactly one parameter the page generator can label, has an explanation on the page, and every one of
its experiments runs through the transformers backend (on the CPU, with the tiny model in place of
llama-3.2-1b and a tiny workload) so a GPU session does not find a broken campaign."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from pytest_llenergy.config.loading import load_campaign
from pytest_llenergy.config.plan import expand

REPO = Path(__file__).resolve().parents[1]
CAMPAIGNS = sorted((REPO / "energy_suites" / "campaigns" / "impact").glob("*.yaml"))
GPU_ONLY = {"compile", "compile_backend", "quantization"}  # CUDA graphs / bitsandbytes need a CUDA GPU
TINY_WORKLOAD = {"num_prompts": 2, "input_tokens": 8, "output_tokens": 3}


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_parameter_impact", REPO / "scripts" / "gen_parameter_impact.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _plan(path: Path):
    campaign, file_hash = load_campaign(path)
    return expand(campaign, str(path), file_hash)


@pytest.mark.parametrize("path", CAMPAIGNS, ids=[p.stem for p in CAMPAIGNS])
def test_campaign_varies_one_labelled_parameter(path: Path, gen) -> None:
    plan = _plan(path)
    key, values = gen.varied_values(path)
    assert len(plan.experiments) == len(values) >= 2
    assert plan.campaign.name == f"impact-{path.stem}" and plan.campaign.cycles >= 8
    assert gen.EXPLANATIONS.get(path.stem), f"{path.stem}: no explanation for docs/parameter-impact.md"
    import pandas as pd

    labels = []
    for experiment in plan.experiments:
        flat = pd.json_normalize({"config": experiment.config.model_dump(mode="json")}).iloc[0]
        labels.append(gen._value_of(flat, key))
    assert sorted(labels) == sorted(values), f"{path.stem}: the page could not tell its experiments apart by {key}"


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in CAMPAIGNS if p.stem not in GPU_ONLY],
                         ids=[p.stem for p in CAMPAIGNS if p.stem not in GPU_ONLY])
def test_every_experiment_runs_on_a_tiny_model(path: Path) -> None:
    from pytest_llenergy.backends.transformers.backend import TransformersBackend

    backend = TransformersBackend()
    for experiment in _plan(path).experiments:
        data = experiment.config.model_dump(mode="json")
        data["model"] = {"name": "tiny-llama", "weights": "random"}
        data["precision"] = "float32"
        batch = 1 if data["workload"]["batch_size"] == 1 else 2
        data["workload"] = {**data["workload"], **TINY_WORKLOAD, "batch_size": batch}
        config = type(experiment.config).model_validate(data)
        session = backend.load(config)
        try:
            stats = session.run(session.prepare(config.workload))
        finally:
            session.close()
        per_prompt = (config.transformers.num_return_sequences if config.transformers else 1)
        assert stats.output_tokens == 2 * per_prompt * 3, f"{experiment.id}: {stats.output_tokens} tokens"


def _fake_python(tmp_path: Path) -> dict[str, str]:
    """A PATH whose python3 only records its arguments (one line per call)."""
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls.log"}\n')
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "IMPACT_DOC": str(tmp_path / "page.md")}


def test_run_impact_runs_every_campaign_when_none_is_named(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(["bash", "scripts/run_impact.sh", str(tmp_path / "out"), "3600"], cwd=REPO,
                          env=_fake_python(tmp_path), capture_output=True, text=True, check=True)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    started = [c.split("--lem-campaign ")[1].split()[0] for c in calls if "-m pytest" in c]
    assert started == [str(p.relative_to(REPO)) for p in CAMPAIGNS], done.stdout
    assert not any("pytest_llenergy.plugin" in c for c in calls)  # installed: loaded by its entry point
    assert calls[-1].startswith("scripts/gen_parameter_impact.py") and "--out" in calls[-1]


def test_run_impact_loads_the_plugin_by_name_where_it_is_not_installed(tmp_path: Path) -> None:
    """The GPU machine has the repository on PYTHONPATH, not an installed plugin (no pytest11 entry point)."""
    import subprocess

    env = _fake_python(tmp_path)
    fake = Path(env["PATH"].split(":")[0]) / "python3"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls.log"}\n[ "$1" = "-c" ] && exit 1\nexit 0\n')
    subprocess.run(["bash", "scripts/run_impact.sh", str(tmp_path / "out"), "3600", "precision"], cwd=REPO,
                   env=env, capture_output=True, text=True, check=True)
    pytest_calls = [c for c in (tmp_path / "calls.log").read_text().splitlines() if "-m pytest" in c]
    assert len(pytest_calls) == 1 and "-m pytest -p pytest_llenergy.plugin energy_suites/" in pytest_calls[0]


def test_run_impact_starts_nothing_without_a_minute_of_budget(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(["bash", "scripts/run_impact.sh", str(tmp_path / "out"), "30", "precision", "beams"],
                          cwd=REPO, env=_fake_python(tmp_path), capture_output=True, text=True, check=True)
    assert "not started: precision" in done.stdout and "not started: beams" in done.stdout
    assert not any("-m pytest" in c for c in (tmp_path / "calls.log").read_text().splitlines())
