"""PNG charts: power timelines and campaign charts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pytest_llenergy.results import RunDirectory, load, summarize
from pytest_llenergy.results.plots import campaign_charts, plot_power_timeline, timeline_charts

from .factory import make_result

PNG = b"\x89PNG\r\n\x1a\n"


def write_series(path: Path, windows=("generate",), devices=("gpu0", "gpu1")) -> Path:
    t = np.arange(-0.04, 1.04, 0.02)
    frames = [pd.DataFrame({"window": name, "window_index": i, "t_s": t, "device": dev, "power_w": 300 + 20 * np.sin(5 * t) + 5 * d})
              for i, name in enumerate(windows) for d, dev in enumerate(devices)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames).to_parquet(path, index=False)
    return path


def test_power_timeline_png(tmp_path: Path):
    series = write_series(tmp_path / "ts.parquet", windows=("generate", "prefill"))
    out = plot_power_timeline(series, tmp_path / "t.png", durations={"": 1.0}, baseline_w={"gpu0": 120.0, "gpu1": 121.0})
    assert out.read_bytes().startswith(PNG)


def test_timelines_use_the_first_cycle_and_report_missing_series(tmp_path: Path):
    run = RunDirectory(tmp_path / "run")
    write_series(run.path / "timeseries" / "a__c1.parquet")
    run.write_result(make_result("a", 1, timeseries_path="timeseries/a__c1.parquet"))
    run.write_result(make_result("a", 2, timeseries_path="timeseries/a__c2.parquet"))
    run.write_result(make_result("b", 1, timeseries_path="timeseries/missing.parquet"))
    charts, problems = timeline_charts(load(run.path), tmp_path / "plots")
    assert list(charts) == ["a (cycle 1)"] and charts["a (cycle 1)"].read_bytes().startswith(PNG)
    assert problems == ["b (cycle 1): time series timeseries/missing.parquet not found"]
    charts, _ = timeline_charts(load(run.path), tmp_path / "plots", limit=0)
    assert charts == {}


def test_campaign_charts_by_experiment_and_group(run_dir: Path, tmp_path: Path):
    summary = summarize(load(run_dir), seed=1, group_by=["backend"], n_resamples=500)
    charts = campaign_charts(summary, tmp_path)
    assert set(charts) == {f"{m} by {level}" for m in ("adjusted_energy_per_output_token_j", "tokens_per_s")
                           for level in ("experiment", "group")}
    assert all(p.read_bytes().startswith(PNG) for p in charts.values())
