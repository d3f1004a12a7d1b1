"""summary.json and summary.csv."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pytest_llenergy.results import load, summarize
from pytest_llenergy.results.export import write_summary_csv, write_summary_json

from .conftest import VALUES


@pytest.fixture
def summary(run_dir: Path):
    return summarize(load(run_dir), seed=3, group_by=["backend"], n_resamples=2000)


def test_summary_json_has_header_flags_and_statistics(run_dir: Path, summary):
    (run_dir / "environment.json").write_text("{}")
    path = write_summary_json(run_dir / "summary.json", summary, run_dirs=[run_dir])
    doc = json.loads(path.read_text())
    run = doc["run"]
    assert run["campaigns"] == ["demo"] and run["run_ids"] == ["20260101-000000"] and run["seed"] == 3
    assert run["created_at"] and run["main_metric"] == "adjusted_energy_per_output_token_j" and run["group_by"] == ["backend"]
    assert run["simulated"] is False and "BCa" in run["method"]
    assert doc["environment"] == str(run_dir / "environment.json")
    assert doc["flags"]["experiments"] == 3 and doc["flags"]["failed_cycles"] == 0
    exp = {e["experiment_id"]: e for e in doc["experiments"]}
    entry = exp["transformers-gpt2-bs8-bf16-bbbb"]
    assert entry["stats"]["energy_j"]["n"] == 4 and entry["stats"]["energy_j"]["mean"] == pytest.approx(50.5)
    stats = entry["stats"]["energy_j"]
    assert stats["method"] == "t" and stats["warning"] is None  # Student-t below 10 cycles
    assert stats["coverage"] == pytest.approx(0.946, abs=0.01) and 0.85 < stats["coverage_skewed"] < stats["coverage"]
    assert "ttft_ms_mean" not in entry["stats"]  # not measured: left out, never 0
    assert entry["config"]["workload"]["batch_size"] == 8 and "batch_size" not in entry and "precision" not in entry
    assert entry["ttft_ms_p95_mean"] is None  # NaN becomes null
    groups = {g["group"]: g for g in doc["groups"]}
    assert groups["backend=transformers"]["n_experiments"] == 2
    assert groups["backend=transformers"]["key"] == {"config.backend": "transformers"}
    assert not list(run_dir.glob(".summary.json.*"))  # atomic: no temp file left


def test_summary_csv_has_experiment_and_group_rows(run_dir: Path, summary):
    path = write_summary_csv(run_dir / "summary.csv", summary)
    csv = pd.read_csv(path)
    assert list(csv["level"]) == ["experiment"] * 3 + ["group"] * 2
    for col in ("experiment_id", "group", "n", "energy_adjusted_j_mean", "energy_adjusted_j_sd", "energy_adjusted_j_ci_low",
                "energy_adjusted_j_ci_high", "energy_per_output_token_j_mean", "tokens_per_s_mean", "peak_memory_mb_max",
                "mean_utilization_pct_mean", "config.precision", "batch_latency_s_mean_mean", "throttle_s_mean", "estimated",
                "simulated", "throttled_cycles", "short_window_cycles", "config.workload.batch_size"):
        assert col in csv.columns, col
    assert not {"batch_size", "precision"} & set(csv.columns)  # one column per setting
    exp = csv[csv.level == "experiment"].set_index("experiment_id")
    assert exp.loc["vllm-gpt2-bs8-bf16-cccc", "n"] == 4
    assert exp.loc["vllm-gpt2-bs8-bf16-cccc", "energy_j_mean"] == pytest.approx(sum(VALUES["vllm-gpt2-bs8-bf16-cccc"]) / 4)
    assert csv["ttft_ms_mean_mean"].isna().all()  # empty cells, not 0
    groups = csv[csv.level == "group"].set_index("group")
    assert groups.loc["backend=transformers", "n"] == 8 and groups.loc["backend=transformers", "n_experiments"] == 2
    assert list(csv.columns[:4]) == ["level", "experiment_id", "group", "n"]
