"""The `lem` companion command."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from campaigns import write_suite

from pytest_llenergy.cli import main

CAMPAIGN = """
name: clirun
cycles: 3
defaults: {model: gpt2}
grid: {shared: {workload.batch_size: [1, 2]}}
measurement: {energy_source: estimate}
gaps: {between_experiments: 0, between_cycles: 0}
"""


@pytest.fixture
def finished_run(pytester):
    write_suite(pytester, CAMPAIGN)
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider", "--lem-save", "first",
                       "--lem-json", "run.json").assert_outcomes(passed=6)
    return next((pytester.path / "lem-results" / "clirun").iterdir())


def test_json_report_holds_manifest_summary_and_verdicts(pytester, finished_run):
    data = json.loads((pytester.path / "run.json").read_text())
    assert data["campaign"] == "clirun" and len(data["manifest"]["entries"]) == 6
    assert data["summary"] and "verdicts" in data


@pytest.mark.slow
def test_report_rebuilds_outputs_from_stored_results(finished_run, tmp_path, capsys):
    for name in ("summary.json", "summary.csv", "report.html"):
        (finished_run / name).unlink()
    assert main(["report", str(finished_run)]) == 0
    assert (finished_run / "report.html").exists() and (finished_run / "summary.csv").exists()
    assert main(["report", str(finished_run), str(finished_run), "--out", str(tmp_path / "merged")]) == 0
    assert (tmp_path / "merged" / "summary.json").exists()
    capsys.readouterr()
    assert main(["report", str(finished_run), str(finished_run)]) == 2  # several dirs need --out
    assert "lem report:" in capsys.readouterr().err


@pytest.mark.slow
def test_report_on_a_campaign_folder_never_writes_into_it(finished_run, capsys):
    """`lem report lem-results/<campaign>`: its one run is reported there; several need --out; the
    campaign folder keeps holding runs only."""
    import shutil

    campaign = finished_run.parent
    (finished_run / "report.html").unlink()
    assert main(["report", str(campaign)]) == 0
    assert "reporting its one run" in capsys.readouterr().out
    assert sorted(p.name for p in campaign.iterdir()) == [finished_run.name]
    assert (finished_run / "report.html").is_file()
    shutil.copytree(finished_run, campaign / "second-run")
    assert main(["report", str(campaign)]) == 2
    assert "holds 2 runs" in capsys.readouterr().err
    assert sorted(p.name for p in campaign.iterdir()) == sorted([finished_run.name, "second-run"])


@pytest.mark.slow
def test_compare_two_result_directories_and_a_saved_run(pytester, finished_run, capsys):
    saved = next((pytester.path / ".lem-benchmarks").glob("*/0001_first.json"))
    assert main(["compare", str(saved), str(finished_run), "--fail", "tokens_per_s:-10%"]) == 0
    out = capsys.readouterr().out
    assert "compare:" in out and "tokens_per_s" in out and ": ok" in out
    assert main(["compare", "nope", str(finished_run)]) == 2
    assert main(["compare", str(saved), str(finished_run), "--fail", "tokens_per_s:-10%", "--alpha", "0.3"]) == 0
    capsys.readouterr()
    assert main(["compare", str(saved), str(finished_run), "--alpha", "0.7"]) == 2
    assert "--alpha 0.7 is not a probability" in capsys.readouterr().err


def test_config_list_show_and_params(pytester, capsys):
    write_suite(pytester, CAMPAIGN)
    (pytester.path / "campaigns").mkdir()
    (pytester.path / "campaigns" / "good.yaml").write_text(CAMPAIGN)
    (pytester.path / "campaigns" / "bad.yaml").write_text("name: bad\ncycels: 2\n")
    assert main(["config", "list", str(pytester.path / "campaigns")]) == 0
    out = capsys.readouterr().out
    assert "clirun: 2 experiments x 3 cycles" in out and "bad.yaml: INVALID: cycels: unknown key" in out
    # pretrained gpt2, not cached and HF_HUB_OFFLINE set: the plan is shown, and what pytest would refuse
    assert main(["config", "show", str(pytester.path / "campaign.yaml")]) == 2
    shown = capsys.readouterr()
    assert "transformers-gpt2-bs1-fp32-" in shown.out and "not in the Hugging Face cache" in shown.err
    assert main(["config", "params", "--coverage", "--backend", "transformers"]) == 0
    assert "transformers" in capsys.readouterr().out


def test_init_writes_a_campaign_that_collects(pytester, capsys):
    assert main(["init", str(pytester.path / "suite"), "--non-interactive", "--name", "mine"]) == 0
    result = pytester.runpytest("suite", "--lem-campaign", "suite/campaigns/mine.yaml", "--collect-only", "-q")
    assert "4 tests collected" in result.stdout.str() or "6 tests collected" in result.stdout.str()


def test_schedule_dry_run_and_bad_input(capsys):
    assert main(["schedule", "--every", "12h", "--for", "24h", "--dry-run", "--", "tests"]) == 0
    assert capsys.readouterr().out.count("-m pytest tests") == 3  # now, +12 h, +24 h
    assert main(["schedule", "--at", "25:99", "--dry-run", "--", "tests"]) == 2
    assert main(["schedule", "--dry-run"]) == 2


@pytest.mark.slow
def test_doctor_reports_sources_and_backends(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest_llenergy.cli", "doctor"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"energy +auto +", proc.stdout) and re.search(r"backend +transformers +available", proc.stdout)
    assert re.search(r"backend +tensorrt +", proc.stdout) and "verdict: ready" in proc.stdout
