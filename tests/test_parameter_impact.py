"""scripts/gen_parameter_impact.py: values matched to the grid, effects with CIs, ranking, 'no effect'."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from results.factory import make_config, make_result

from pytest_llenergy.results import RunDirectory

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gen_parameter_impact.py"


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_parameter_impact", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _write(root: Path, campaign: str, values: dict[str, tuple[float, dict]], cycles: int = 5, noise: float = 0.01) -> None:
    rng = np.random.default_rng(1)
    run = RunDirectory(root / campaign / "2026-01-01T00-00-00-abcd")
    for i, (label, (joules, config)) in enumerate(values.items()):
        for c in range(1, cycles + 1):
            j = joules * (1 + noise * rng.standard_normal())
            run.write_result(make_result(f"transformers-qwen-{label}-{i:04x}", c, energy_j=j * 1.5, adjusted_j=j,
                                         config=config, campaign=campaign))


def test_page_ranks_parameters_and_says_which_have_no_effect(gen, tmp_path: Path) -> None:
    _write(tmp_path, "impact-precision", {
        "bf16": (100.0, make_config(precision="bfloat16")),
        "fp16": (100.2, make_config(precision="float16")),
        "fp32": (180.0, make_config(precision="float32"))})
    _write(tmp_path, "impact-batch_size", {
        "b8": (200.0, make_config(batch_size=8)), "b32": (100.0, make_config(batch_size=32)),
        "b64": (70.0, make_config(batch_size=64))})
    _write(tmp_path, "impact-attention", {
        "sdpa": (100.0, make_config()), "eager": (100.1, make_config())})  # no attention key: values unknown
    page = gen.render(tmp_path, gen.EXPLANATIONS)
    ranking = page.split("## Ranking")[1].split("## Per parameter")[0]
    assert ranking.index("`precision`") < ranking.index("`batch_size`") < ranking.index("`attention`")  # 80 > 65 > ?
    precision = page.split("### `precision`")[1].split("###")[0]
    fp32 = next(line for line in precision.splitlines() if line.startswith("| float32 | 5 |"))
    effect = float(fp32.split("|")[5].split("%")[0])
    assert 75 < effect < 85  # +80 % with 1 % noise
    raw_effect = float(fp32.split("|")[6].split("%")[0])
    assert 75 < raw_effect < 85  # raw energy is 1.5 x adjusted in these results: the same ratio
    half_width = float(fp32.split("|")[4].strip(" ±%"))
    assert 0 < half_width < 3  # 1 % noise over 5 cycles
    assert "within ±3 %: 7 of 7" in page  # attention's two values are one unknown group
    assert "| bfloat16 | 5 |" in precision and "reference" in precision
    batch = page.split("### `batch_size`")[1].split("###")[0]
    b64 = next(line for line in batch.splitlines() if line.startswith("| 64 | 5 |"))
    assert -68 < float(b64.split("|")[5].split("%")[0]) < -62  # 70 vs 200
    assert "No measurable effect" not in batch
    assert "Not measured" in page.split("### `kv_cache`")[1].split("###")[0]


def test_tiny_differences_are_reported_as_no_measurable_effect(gen, tmp_path: Path) -> None:
    _write(tmp_path, "impact-precision", {
        "bf16": (100.0, make_config(precision="bfloat16")), "fp16": (100.1, make_config(precision="float16")),
        "fp32": (99.9, make_config(precision="float32"))}, noise=0.03)
    page = gen.render(tmp_path, gen.EXPLANATIONS)
    assert "No measurable effect" in page.split("### `precision`")[1].split("###")[0]
