"""`lem report` keeps the run's seed and groups, refuses empty folders and cleans stale plots;
dry runs never delete resume state; a resume after an edit says what changed."""

from __future__ import annotations

import json

import pytest
from test_resume import CAMPAIGN, _run_dirs, _setup

from pytest_llenergy.cli import main

GROUPED = CAMPAIGN.replace("name: resumable", "name: resumable\nseed: 1234\ngroup_by: [workload.batch_size]")


def _run(pytester, *args):
    return pytester.runpytest("--lem-campaign", "campaign.yaml", *args)


class TestResumeEdits:
    @pytest.mark.slow
    def test_edit_is_named_and_removed_experiments_leave_the_summary(self, pytester):
        _setup(pytester)
        _run(pytester).assert_outcomes(passed=6)
        edited = CAMPAIGN.replace("[1, 2, 3]", "[1, 2, 4]").replace("defaults: {model: gpt2}",
                                                                       "defaults: {model: gpt2}")
        (pytester.path / "campaign.yaml").write_text(edited)
        result = _run(pytester, "--lem-resume")
        result.assert_outcomes(passed=2, deselected=4)
        result.stdout.fnmatch_lines(["lem-resume: campaign edited: added transformers-gpt2-bs4-*",
                                     "lem-resume: campaign edited: dropped transformers-gpt2-bs3-*",
                                     "lem-resume: 1 experiment(s) no longer in the campaign are left out of the summary*"])
        run_dir = _run_dirs(pytester)[0]
        ids = {e["experiment_id"] for e in json.loads((run_dir / "summary.json").read_text())["experiments"]}
        assert {i.split("-")[2] for i in ids} == {"bs1", "bs2", "bs4"}
        assert len(list((run_dir / "experiments").glob("*bs3*.json"))) == 2  # results kept on disk

    @pytest.mark.slow
    def test_changed_settings_are_reported_as_changed(self, pytester):
        _setup(pytester)
        _run(pytester).assert_outcomes(passed=6)
        (pytester.path / "campaign.yaml").write_text(
            CAMPAIGN.replace("defaults: {model: gpt2}", "defaults: {model: gpt2, workload: {output_tokens: 7}}"))
        result = _run(pytester, "--lem-resume")
        result.stdout.fnmatch_lines(["lem-resume: campaign edited: changed transformers-gpt2-bs1-* -> transformers-gpt2-bs1-*"])

    @pytest.mark.slow
    def test_collect_only_reset_deletes_nothing(self, pytester):
        _setup(pytester)
        _run(pytester).assert_outcomes(passed=6)
        result = _run(pytester, "--lem-resume-reset", "--collect-only", "-q")
        result.stdout.fnmatch_lines(["lem-resume: reset: would forget (--collect-only: nothing deleted) run *"])
        result = _run(pytester, "--lem-resume")
        result.assert_outcomes(deselected=6)  # the state survived the dry run


class TestReport:
    @pytest.mark.slow
    def test_report_keeps_seed_and_groups_and_cleans_stale_plots(self, pytester, capsys):
        _setup(pytester)
        (pytester.path / "campaign.yaml").write_text(GROUPED)
        _run(pytester).assert_outcomes(passed=6)
        run_dir = _run_dirs(pytester)[0]
        stale = run_dir / "plots" / "old_group_chart.png"
        stale.parent.mkdir(exist_ok=True)
        stale.write_bytes(b"png")
        assert main(["report", str(run_dir)]) == 0
        header = json.loads((run_dir / "summary.json").read_text())["run"]
        assert header["seed"] == 1234 and header["group_by"] == ["workload.batch_size"]
        assert not stale.exists()
        assert main(["report", str(run_dir), "--seed", "7", "--group-by", ""]) == 0
        header = json.loads((run_dir / "summary.json").read_text())["run"]
        assert header["seed"] == 7 and not header["group_by"]

    def test_empty_folder_is_refused(self, tmp_path, capsys):
        assert main(["report", str(tmp_path)]) != 0
        assert "no results in" in capsys.readouterr().err
        assert not (tmp_path / "report.html").exists()

    def test_several_folders_need_out(self, tmp_path, capsys):
        assert main(["report", str(tmp_path), str(tmp_path)]) == 2
        assert "--out DIR is required" in capsys.readouterr().err
