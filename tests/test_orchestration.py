"""Orchestration: the plugin's own hooks, thermal gaps, model reuse and cold starts, xdist pinning."""

from __future__ import annotations

import pytest
from campaigns import results, write_suite

CAMPAIGN = """
name: orch
cycles: 2
defaults: {model: {name: gpt2, weights: random}}
grid: {shared: {workload.batch_size: [1, 2]}}
measurement: {energy_source: estimate}
gaps: {between_experiments: 0, between_cycles: 0}
"""

LOADING_CONFTEST = '''
import os, pytest
from pytest_llenergy.backends.base import GenerationStats


class Session:
    load_time_s = 0.0
    engine_info = {}
    def __init__(self, key): self.key = key
    def prepare(self, workload): return workload
    def run(self, workload):
        return GenerationStats(input_tokens=1, output_tokens=self.key, num_prompts=1, duration_s=0.01)
    def close(self):
        with open("events.log", "a") as f: f.write(f"close {self.key}\\n")


class Backend:
    name = "transformers"
    def available(self): return True, ""
    def load_key(self, experiment): return str(experiment.workload.batch_size)
    def load(self, experiment):
        with open("events.log", "a") as f: f.write(f"load {experiment.workload.batch_size}\\n")
        return Session(experiment.workload.batch_size)


@pytest.fixture(autouse=True)
def fake_backend(monkeypatch):
    import pytest_llenergy.plugin.measurement.runtest as runtest
    monkeypatch.setattr(runtest, "get_backend", lambda name: Backend())
'''

RUN_TEST = '''
def test_inference(lem_experiment, lem_session, lem_result):
    stats = lem_session.run(None)
    assert stats.output_tokens == lem_experiment.config.workload.batch_size  # the right model
    lem_result.record_generation(stats)
'''


def _suite(pytester, campaign=CAMPAIGN):
    write_suite(pytester, campaign, test=RUN_TEST)
    pytester.makeconftest(LOADING_CONFTEST)


class TestModelReuse:
    @pytest.mark.slow
    def test_consecutive_items_sharing_a_model_reuse_it(self, pytester):
        _suite(pytester)
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-order", "grouped").assert_outcomes(passed=4)
        events = (pytester.path / "events.log").read_text().split("\n")
        assert [e for e in events if e.startswith("load")] == ["load 1", "load 2"]
        loads = [(r["cycle"], r["load"]["cold"]) for r in results(pytester, "orch")]
        assert sorted(loads) == [(1, True), (1, True), (2, False), (2, False)]

    @pytest.mark.slow
    def test_interleaved_order_with_reuse_still_gives_each_item_its_model(self, pytester):
        _suite(pytester, CAMPAIGN + "reuse: {max_resident: 1}\n")  # one resident session: reloads as models alternate
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-order", "interleaved").assert_outcomes(passed=4)
        events = [e for e in (pytester.path / "events.log").read_text().split("\n") if e.startswith("load")]
        assert events == ["load 1", "load 2", "load 1", "load 2"]

    @pytest.mark.slow
    def test_force_cold_start_reloads_for_every_item(self, pytester):
        _suite(pytester, CAMPAIGN + "force_cold_start: true\n")
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-order", "grouped").assert_outcomes(passed=4)
        events = (pytester.path / "events.log").read_text().split("\n")
        assert events[:4] == ["load 1", "close 1", "load 1", "close 1"]
        assert all(r["load"]["cold"] for r in results(pytester, "orch"))

    @pytest.mark.slow
    def test_force_cold_start_option(self, pytester):
        _suite(pytester)
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-order", "grouped", "--lem-force-cold-start").assert_outcomes(passed=4)
        assert all(r["load"]["cold"] for r in results(pytester, "orch"))


class TestGaps:
    @pytest.mark.slow
    def test_fixed_gaps_cycle_gap_replaces_experiment_gap_none_first(self, pytester):
        _suite(pytester, CAMPAIGN.replace("between_experiments: 0, between_cycles: 0", "between_experiments: 0.1s, between_cycles: 0.3s"))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-v")
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines(["llenergy: campaign orch: cycle 1/2, experiment 1/2 *", "*experiment gap: waiting 0.1 s*",
                                     "*cycle gap: waiting 0.3 s*"])
        gaps = {(r["cycle"], r["experiment_index"]): r["gap"] for r in results(pytester, "orch")}
        assert gaps[(1, 1)]["kind"] == "none"
        assert gaps[(1, 2)]["waited_s"] == pytest.approx(0.1) and gaps[(2, 1)]["waited_s"] == pytest.approx(0.3)
        assert all("cpu" in str(g["start_power_w"]) or g["start_power_w"] for g in gaps.values())  # state at the start

    @pytest.mark.slow
    def test_ini_twin_is_the_default_and_option_overrides(self, pytester):
        _suite(pytester, CAMPAIGN.replace("gaps: {between_experiments: 0, between_cycles: 0}\n", ""))
        pytester.makeini("[pytest]\nlem_gap_experiments = 0.2s\nlem_gap_cycles = 0\n")
        pytester.runpytest("--lem-campaign", "campaign.yaml").assert_outcomes(passed=4)
        assert {r["gap"]["waited_s"] for r in results(pytester, "orch") if r["gap"]["kind"] == "fixed"} == {0.2}
        pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-gap-experiments", "0").assert_outcomes(passed=4)

    @pytest.mark.slow
    def test_adaptive_gap_without_a_gpu_waits_nothing_and_says_why(self, pytester):
        _suite(pytester, CAMPAIGN.replace("between_experiments: 0, between_cycles: 0", "between_experiments: adaptive, between_cycles: adaptive"))
        pytester.runpytest("--lem-campaign", "campaign.yaml").assert_outcomes(passed=4)
        later = [r["gap"] for r in results(pytester, "orch") if r["gap"]["kind"] != "none"]
        assert later and all(g["waited_s"] == 0 and "estimate source has no GPU to cool" in g["reason"] for g in later)


class TestOwnHooks:
    def test_conftest_overrides_each_hook(self, pytester):
        _suite(pytester)
        pytester.makeconftest(LOADING_CONFTEST + '''
import json

def pytest_lem_modify_experiments(config, experiments):
    experiments[:] = [e for e in experiments if e.config.workload.batch_size == 2]

def pytest_lem_thermal_gap(item, previous):
    return {"kind": "fixed", "waited_s": 42.0, "reason": "from conftest"}

def pytest_lem_result(config, result):
    with open("hook.log", "a") as f: f.write(f"result {result.item_id}\\n")

def pytest_lem_summary(config, summary):
    with open("hook.log", "a") as f: f.write("summary\\n")

def pytest_lem_dispatch(item, nextitem):
    if not item.callspec.id.startswith("c2-"):
        return None  # run locally
    from _pytest.runner import runtestprotocol  # "elsewhere": a runner of our own that logs the reports
    with open("hook.log", "a") as f: f.write(f"dispatched {item.callspec.id}\\n")
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    runtestprotocol(item, nextitem=nextitem, log=True)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
''')
        pytester.runpytest("--lem-campaign", "campaign.yaml").assert_outcomes(passed=2)
        log = (pytester.path / "hook.log").read_text().split("\n")
        assert sum(line.startswith("result c") for line in log) == 2
        assert sum(line.startswith("dispatched c2-") for line in log) == 1
        assert all(r["gap"]["reason"] == "from conftest" for r in results(pytester, "orch"))
        assert {r["config"]["workload"]["batch_size"] for r in results(pytester, "orch")} == {2}


WORKER_GPUS_CONFTEST = '''

import os
from pathlib import Path


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # what each worker was pinned to, whether or not it gets an item
        Path("workers").mkdir(exist_ok=True)
        Path("workers", worker).write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
'''


@pytest.mark.slow
@pytest.mark.requires("xdist")
@pytest.mark.skipif("not __import__('importlib').util.find_spec('xdist')", reason="pytest-xdist is not installed")
class TestXdist:
    def test_auto_starts_one_worker_per_visible_gpu_each_pinned(self, pytester, monkeypatch):
        write_suite(pytester, CAMPAIGN, test="""
import os

def test_inference(lem_experiment, lem_session, lem_result):
    lem_result.engine["gpus"] = os.environ["PYTEST_XDIST_WORKER"] + ":" + os.environ["CUDA_VISIBLE_DEVICES"]
    lem_result.record_generation(lem_session.run(lem_session.prepare(lem_experiment.config.workload)))
""")
        conftest = pytester.path / "conftest.py"
        conftest.write_text(conftest.read_text() + WORKER_GPUS_CONFTEST)
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6")  # 3 GPUs on a 2-core machine: auto must not follow the CPUs
        result = pytester.runpytest_subprocess("--lem-campaign", "campaign.yaml", "-n", "auto", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines(["*3 workers*"])
        pinned = {p.name: p.read_text() for p in (pytester.path / "workers").iterdir()}
        assert pinned == {"gw0": "3", "gw1": "5", "gw2": "6"}  # each worker its own GPU, none shared
        for r in results(pytester, "orch"):  # every item measured on its worker's GPU only
            worker, gpus = r["engine"]["gpus"].split(":")
            assert pinned[worker] == gpus
        manifest = next((pytester.path / "lem-results" / "orch").glob("*/manifest.json")).read_text()
        assert manifest.count('"passed"') == 4

    def test_gpus_per_worker_groups_gpus(self, pytester, monkeypatch):
        write_suite(pytester, CAMPAIGN, test="""
import os

def test_inference(lem_experiment, lem_session, lem_result):
    lem_result.engine["gpus"] = os.environ["CUDA_VISIBLE_DEVICES"]
    lem_result.record_generation(lem_session.run(lem_session.prepare(lem_experiment.config.workload)))
""")
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
        result = pytester.runpytest_subprocess("--lem-campaign", "campaign.yaml", "-n", "auto", "--lem-gpus-per-worker", "2",
                                               "-p", "no:cacheprovider")
        result.assert_outcomes(passed=4)
        assert {r["engine"]["gpus"] for r in results(pytester, "orch")} == {"0,1", "2,3"}
