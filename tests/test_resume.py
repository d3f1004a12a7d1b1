"""--lem-resume: only unfinished items run again, in the same run directory; state survives kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from campaigns import write_suite

CAMPAIGN = """
name: resumable
cycles: 2
defaults: {model: gpt2}
grid: {shared: {workload.batch_size: [1, 2, 3]}}
"""

LOGGING_CONFTEST = '''
import os, time, pytest
from pytest_llenergy.backends.base import GenerationStats


class SlowSession:
    load_time_s = 0.0
    engine_info = {}

    def prepare(self, workload):
        return workload

    def run(self, workload):
        time.sleep(float(os.environ.get("ITEM_SLEEP", "0")))
        return GenerationStats(input_tokens=4, output_tokens=8, num_prompts=1, duration_s=0.01)

    def close(self):
        pass


@pytest.fixture
def lem_session(lem_experiment):
    with open("runs.log", "a") as log:
        log.write(lem_experiment.id + "\\n")
    return SlowSession()
'''

TEST = '''
def test_inference(lem_experiment, lem_session, lem_result):
    lem_result.record_generation(lem_session.run(None))
'''


def _setup(pytester):
    write_suite(pytester, CAMPAIGN, test=TEST)
    pytester.makeconftest(LOGGING_CONFTEST)


def _run_dirs(pytester):
    return sorted((pytester.path / "lem-results" / "resumable").iterdir())


class TestResume:
    @pytest.mark.slow
    def test_resume_runs_only_unfinished_items_in_the_same_directory(self, pytester):
        _setup(pytester)
        pytester.runpytest("--lem-campaign", "campaign.yaml").assert_outcomes(passed=6)
        run_dir = _run_dirs(pytester)[0]
        victims = sorted((run_dir / "experiments").glob("*__c2.json"))[:2]
        for path in victims:
            path.unlink()
        (run_dir / "experiments" / sorted((run_dir / "experiments").glob("*__c1.json"))[0].name).write_text("{corrupt")
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-resume")
        result.assert_outcomes(passed=3, deselected=3)
        result.stdout.fnmatch_lines(["lem-resume: 3 of 6 items done (run *, * ago); 3 to run; --lem-resume-reset to start over"])
        assert _run_dirs(pytester) == [run_dir]
        assert len(list((run_dir / "experiments").glob("*.json"))) == 6

    def test_collect_only_is_the_dry_run(self, pytester):
        _setup(pytester)
        pytester.runpytest("--lem-campaign", "campaign.yaml").assert_outcomes(passed=6)
        next(iter((_run_dirs(pytester)[0] / "experiments").glob("*__c1.json"))).unlink()
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-resume", "--collect-only", "-q")
        result.stdout.fnmatch_lines(["*1/6 tests collected (5 deselected)*"])
        assert (pytester.path / "runs.log").read_text().count("\n") == 6

    @pytest.mark.slow
    def test_failed_items_run_again(self, pytester):
        _setup(pytester)
        pytester.makepyfile(test_suite=TEST.replace("lem_result.record", "assert lem_experiment.cycle == 1\n    lem_result.record"))
        pytester.runpytest("--lem-campaign", "campaign.yaml").assert_outcomes(passed=3, failed=3)
        pytester.makepyfile(test_suite=TEST)
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-resume").assert_outcomes(passed=3, deselected=3)

    @pytest.mark.slow
    def test_changed_experiment_reruns_only_itself(self, pytester):
        _setup(pytester)
        pytester.runpytest("--lem-campaign", "campaign.yaml").assert_outcomes(passed=6)
        (pytester.path / "campaign.yaml").write_text(CAMPAIGN.replace("[1, 2, 3]", "[1, 2, 4]"))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-resume")
        result.assert_outcomes(passed=2, deselected=4)

    @pytest.mark.slow
    def test_reset_says_what_it_forgets(self, pytester):
        _setup(pytester)
        pytester.runpytest("--lem-campaign", "campaign.yaml").assert_outcomes(passed=6)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-resume", "--lem-resume-reset")
        result.stdout.fnmatch_lines(["lem-resume: reset: forgetting run * (6 items done); its results stay in *"])
        result.assert_outcomes(passed=6)
        assert len(_run_dirs(pytester)) == 2


@pytest.mark.slow
def test_resume_marks_items_done_on_disk_as_passed_in_the_manifest(pytester):
    """kill -9 between an item's result file and its manifest update: the resumed run reconciles."""
    _setup(pytester)
    pytester.runpytest("--lem-campaign", "campaign.yaml").assert_outcomes(passed=6)
    path = _run_dirs(pytester)[0] / "manifest.json"
    data = json.loads(path.read_text())
    key = sorted(data["entries"])[0]
    data["entries"][key].update(status="running", ended_at=None, result_path=None)
    path.write_text(json.dumps(data))
    pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-resume").assert_outcomes(deselected=6)
    entry = json.loads(path.read_text())["entries"][key]
    assert entry["status"] == "passed" and entry["result_path"] == f"experiments/{key}.json" and entry["ended_at"]


def test_manifest_tracks_every_planned_item(pytester):
    _setup(pytester)
    pytester.makepyfile(test_suite=TEST.replace("lem_result.record", "import pytest\n    if lem_experiment.cycle == 2 and lem_experiment.index == 1: pytest.skip('no')\n    lem_result.record"))
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-k", "not bs3")
    manifest = json.loads((_run_dirs(pytester)[0] / "manifest.json").read_text())
    statuses = sorted(e["status"] for e in manifest["entries"].values())
    assert statuses == ["passed", "passed", "passed", "pending", "pending", "skipped"]
    passed = [e for e in manifest["entries"].values() if e["status"] == "passed"]
    assert all((_run_dirs(pytester)[0] / e["result_path"]).exists() and e["started_at"] and e["ended_at"] for e in passed)


@pytest.mark.slow
def test_ctrl_c_records_interrupted_and_says_how_to_resume(pytester):
    _setup(pytester)
    pytester.makepyfile(test_suite=TEST.replace("lem_result.record", "if lem_experiment.cycle == 2: raise KeyboardInterrupt\n    lem_result.record"))
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", no_reraise_ctrlc=True)
    result.stdout.fnmatch_lines(["*interrupted: finished items are saved; resume with: pytest * --lem-resume*"])
    manifest = json.loads((_run_dirs(pytester)[0] / "manifest.json").read_text())
    statuses = sorted(e["status"] for e in manifest["entries"].values())
    assert statuses.count("passed") == 3 and statuses.count("interrupted") == 1


def _wait_for(proc: subprocess.Popen, event, what: str, deadline_s: float = 240.0) -> None:
    """Poll until ``event()`` holds; fail if the process ends first (an event, not a fixed delay)."""
    deadline = time.monotonic() + deadline_s
    while not event():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {deadline_s:.0f} s"
        time.sleep(0.01)


@pytest.mark.slow
def test_kill_9_at_several_points_loses_nothing_and_measures_each_item_once(pytester):
    _setup(pytester)
    env = dict(os.environ, ITEM_SLEEP="0.4", HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "pytest", "--lem-campaign", "campaign.yaml", "-q"]
    log = pytester.path / "runs.log"

    def measured() -> int:  # items whose measurement began (the session fixture logs each)
        return len(log.read_text().split()) if log.exists() else 0

    def finished() -> set[str]:  # items with a result file
        files = (pytester.path / "lem-results" / "resumable").glob("*/experiments/*.json")
        return {f"c{f.stem.rsplit('__c', 1)[1]}-{f.stem.rsplit('__c', 1)[0]}" for f in files}

    def in_progress(before: int) -> bool:  # an item of this run began and has no result file yet
        return measured() - len(finished()) > before

    # kill points: right after the 1st result file; mid-item; after the 5th result file
    points = [(lambda _: len(finished()) >= 1, "the first result file"),
              (in_progress, "an item in progress"),
              (lambda _: len(finished()) >= 5, "the fifth result file")]
    snapshots = []  # (log lines so far, items with a result file) after each kill
    for point, what in points:
        before = measured() - len(finished())  # items killed mid-measurement earlier (logged, no file)
        proc = subprocess.Popen(command + ["--lem-resume"], cwd=pytester.path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(proc, lambda p=point, b=before: p(b), what)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        snapshots.append((measured(), finished()))
    subprocess.run(command + ["--lem-resume"], cwd=pytester.path, env=env, check=True, capture_output=True)
    run_dirs = _run_dirs(pytester)
    assert len(run_dirs) == 1
    files = sorted((run_dirs[0] / "experiments").iterdir())
    assert len(files) == 6 and all(f.suffix == ".json" for f in files)  # no temp files, no partial results
    for f in files:
        assert json.loads(f.read_text())["status"] == "passed"
    runs = log.read_text().split()
    assert len(set(runs)) == 6
    for seen, done in snapshots:  # nothing with a result file was ever measured again
        assert not done & set(runs[seen:])
    assert all(0 < len(done) < 6 for _, done in snapshots)  # every kill landed mid-campaign
    manifest = json.loads((run_dirs[0] / "manifest.json").read_text())
    assert all(e["status"] == "passed" for e in manifest["entries"].values())
