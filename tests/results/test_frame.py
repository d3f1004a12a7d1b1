"""load(): one flat row per (experiment, cycle), units in the names, missing values never 0."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from pytest_llenergy.results import RunDirectory, load
from pytest_llenergy.results.frame import result_row

from .factory import OUTPUT_TOKENS, make_config, make_result, write_run


def test_one_row_per_item_with_flat_columns(run_dir: Path):
    df = load(run_dir)
    assert len(df) == 12
    assert list(df.groupby("experiment_id").size()) == [4, 4, 4]
    row = df[(df.experiment_id == "transformers-gpt2-bs8-bf16-bbbb") & (df.cycle == 2)].iloc[0]
    assert row["energy_j"] == 52.0 and row["energy_adjusted_j"] == pytest.approx(31.2)
    assert row["energy_per_output_token_j"] == pytest.approx(52.0 / OUTPUT_TOKENS)
    assert row["config.workload.batch_size"] == 8 and row["config.precision"] == "bfloat16"
    assert "batch_size" not in df.columns and "precision" not in df.columns  # one column per setting: its config path
    assert row["backend"] == "transformers" and row["model"] == "gpt2"
    assert row["status"] == "passed" and row["baseline_method"] == "cached" and row["gap_waited_s"] == 3.0
    assert row["warmup_converged"] == False  # noqa: E712  (cycle 2 of the factory did not converge)
    for col in ("duration_s", "tokens_per_s", "mean_power_w", "peak_power_w", "disagreement_pct", "peak_memory_mb",
                "baseline_power_w", "timeseries_path", "flags", "estimated", "simulated", "throttled", "load_cold"):
        assert col in df.columns


def test_missing_values_are_nan_never_zero(tmp_path: Path):
    run = RunDirectory(tmp_path / "run")
    run.write_result(make_result("no-energy", 1, energy_j=None))
    run.write_result(make_result("no-adjusted", 1, energy_j=10.0, adjusted_j=None))
    df = load(run.path).set_index("experiment_id")
    for col in ("energy_j", "energy_adjusted_j", "energy_per_output_token_j", "mean_power_w", "disagreement_pct"):
        assert math.isnan(df.loc["no-energy", col]), col
    assert pd.isna(df.loc["no-energy", "estimated"]) and df.loc["no-energy", "energy_source"] is None
    assert math.isnan(df.loc["no-adjusted", "energy_adjusted_j"])
    assert math.isnan(df.loc["no-adjusted", "adjusted_energy_per_output_token_j"])
    assert math.isnan(df.loc["no-adjusted", "ttft_ms_mean"])  # not streamed: not measured


def test_throttle_causes_flags_and_streaming_latency(tmp_path: Path):
    run = RunDirectory(tmp_path / "run")
    run.write_result(make_result("e", 1, throttle_s={"power_cap": 0.5, "thermal": 0.1}, flags=["short_window", "sampler_gaps"],
                                 streaming=True))
    row = load(run.path).iloc[0]
    assert row["throttle_power_cap_s"] == 0.5 and row["throttle_thermal_s"] == 0.1
    assert row["throttle_s"] == pytest.approx(0.6) and row["throttled"]
    assert row["flags"] == "short_window,sampler_gaps" and row["short_window"]
    assert row["ttft_ms_mean"] == 13.0 and row["itl_ms_mean"] == pytest.approx(3.1)


def test_per_token_energy_is_derived_when_the_window_lacks_it():
    result = make_result("e", 1, energy_j=64.0, adjusted_j=32.0)
    window = result.energy.model_copy(update={"energy_per_output_token_j": None, "adjusted_energy_per_output_token_j": None})
    row = result_row(result.model_copy(update={"energy": window}))
    assert row["energy_per_output_token_j"] == 64.0 / OUTPUT_TOKENS
    assert row["adjusted_energy_per_output_token_j"] == 32.0 / OUTPUT_TOKENS


def test_accepts_files_dirs_parents_and_lists(tmp_path: Path):
    a = write_run(tmp_path, {"x": [1.0, 2.0]}, run_id="r1")
    b = write_run(tmp_path, {"y": [3.0]}, run_id="r2")
    assert len(load(a.path)) == 2
    assert len(load(tmp_path)) == 3  # parent holding run dirs
    assert len(load([a.path, b.path])) == 3
    assert len(load([a.path, a.path])) == 2  # the same item twice counts once
    assert len(load(a.experiments_dir / "x__c1.json")) == 1
    assert len(load(a.experiments_dir)) == 2
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope")


def test_corrupt_files_are_skipped_and_listed(tmp_path: Path):
    run = write_run(tmp_path, {"x": [1.0, 2.0]})
    (run.experiments_dir / "broken__c3.json").write_text("{not json")
    df = load(run.path)
    assert len(df) == 2
    assert df.attrs["skipped"] == [str(run.experiments_dir / "broken__c3.json")]


def test_empty_run_gives_an_empty_frame_with_the_columns(tmp_path: Path):
    df = load(RunDirectory(tmp_path / "empty").path.parent)
    assert len(df) == 0 and "energy_j" in df.columns


def test_config_is_flattened_with_dotted_names(tmp_path: Path):
    run = write_run(tmp_path, {"x": [1.0]}, config_of={"x": make_config(backend="vllm", batch_size=4)})
    row = load(run.path).iloc[0]
    assert row["config.backend"] == "vllm" and row["config.vllm.attn"] == "sdpa"
    assert row["config.model.name"] == "gpt2" and row["config.workload.batch_size"] == 4
