"""build_outputs (session end, lem report) and the terminal table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llenergy.results import build_outputs, format_terminal_table, load, summarize
from pytest_llenergy.results.export import summary_payload

from .factory import write_run


def test_build_outputs_writes_everything(run_dir: Path):
    (run_dir / "manifest.json").write_text(json.dumps({"seed": 1234}))
    summary = build_outputs(run_dir, group_by=["backend"], n_resamples=1000)
    assert summary.seed == 1234  # the campaign seed from the manifest
    for name in ("summary.json", "summary.csv", "report.html"):
        assert (run_dir / name).is_file() and summary.outputs[name] == str(run_dir / name)
    assert len(list((run_dir / "plots").glob("*.png"))) == 4
    assert json.loads((run_dir / "summary.json").read_text())["run"]["seed"] == 1234
    assert summary.n_experiments == 3
    doc = summary_payload(summary)  # the summary.json document, for --lem-json and plugins
    assert doc["run"]["seed"] == 1234 and doc["environment"] is None and len(doc["experiments"]) == 3
    json.dumps(doc, allow_nan=False)


def test_the_plugin_imports_outputs_from_report(run_dir: Path):
    from pytest_llenergy.results.report import build_outputs, build_report, format_terminal_table  # noqa: F401

    summary = build_outputs(run_dir, plots=False, seed=1, n_resamples=200, cycles_configured=1)
    assert summary.cycles_configured == 1
    assert not any("fewer than 3" in line for line in format_terminal_table(summary, 0))


def test_build_outputs_merges_run_dirs_into_an_output_dir(tmp_path: Path):
    a = write_run(tmp_path, {"x": [1.0, 1.1], "y": [2.0, 2.1]}, run_id="shard-1")
    b = write_run(tmp_path, {"x": [1.2], "z": [3.0, 3.1, 2.9]}, run_id="shard-2")
    with pytest.raises(ValueError, match="out_dir is required"):
        build_outputs([a.path, b.path])
    summary = build_outputs([a.path, b.path], out_dir=tmp_path / "merged", plots=False, seed=2, n_resamples=500)
    assert summary.header["run_ids"] == ["shard-1", "shard-2"]
    assert summary.ci("x", "energy_j").n == 3  # an experiment's cycles from both shards are pooled
    assert (tmp_path / "merged" / "report.html").is_file() and not (tmp_path / "merged" / "plots").exists()


class TestTerminalTable:
    @pytest.fixture
    def summary(self, tmp_path: Path):
        run = write_run(tmp_path, {"slow": [300.0, 310.0, 305.0], "fast": [100.0, 101.0, 99.0], "few": [200.0, 201.0]})
        return summarize(load(run.path), seed=1, n_resamples=500)

    def test_sorted_by_main_metric_with_ci(self, summary):
        lines = format_terminal_table(summary, 0)
        assert "energy per output token (adjusted) [J]" in lines[0]
        body = [line for line in lines if line.split()[0] in ("slow", "fast", "few")]
        assert [line.split()[0] for line in body] == ["fast", "few", "slow"]
        assert "[" in body[0] and "±" in body[0]

    def test_warns_about_few_cycles_unless_single_cycle_by_design(self, summary):
        assert any("fewer than 3 passed cycles" in line and "few" in line for line in format_terminal_table(summary, 0))
        assert not any("fewer than 3" in line for line in format_terminal_table(summary, 0, cycles_configured=1))

    def test_quiet_and_verbose(self, summary):
        quiet, normal, verbose = (format_terminal_table(summary, v) for v in (-1, 0, 1))
        assert len(quiet) <= len(normal) and "J raw" in verbose[1] and "J raw" not in normal[1]

    def test_flags_and_banners(self, tmp_path: Path):
        run = write_run(tmp_path, {"e": [1.0, 1.1, 0.9]}, simulated=True, flags=["short_window"])
        lines = format_terminal_table(summarize(load(run.path), seed=1, n_resamples=200), 0)
        assert any("SIMULATED" in line for line in lines)
        assert any(line.startswith("e ") and line.endswith("sim,short") for line in lines)

    def test_empty(self, tmp_path: Path):
        assert format_terminal_table(summarize(load(tmp_path), seed=1), 0) == ["llenergy: no results to summarise"]


def test_the_campaign_description_is_shown_under_the_report_title(run_dir: Path):
    (run_dir / "manifest.json").write_text(json.dumps({"seed": 1, "description": "Batch sizes <1..8> on gpt2"}))
    build_outputs(run_dir, plots=False, n_resamples=200)
    html = (run_dir / "report.html").read_text()
    assert '<p class="description">Batch sizes &lt;1..8&gt; on gpt2</p>' in html
    (run_dir / "manifest.json").write_text(json.dumps({"seed": 1}))
    build_outputs(run_dir, plots=False, n_resamples=200)
    assert 'class="description"' not in (run_dir / "report.html").read_text()
