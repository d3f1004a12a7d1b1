"""Faults: a backend that raises, a GPU lost mid-window, an unwritable results directory.

Each item fails with the reason in its result and the manifest; the campaign goes on; nothing
already written is damaged.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from campaigns import results, write_suite

TESTS_DIR = Path(__file__).parent

CAMPAIGN = """
name: faults
cycles: 1
defaults: {model: gpt2}
grid: {shared: {workload.batch_size: [1, 2, 3]}}
measurement: {energy_source: estimate}
gaps: {between_experiments: 0, between_cycles: 0}
"""


def _manifest(pytester) -> dict:
    return json.loads(next((pytester.path / "lem-results" / "faults").glob("*/manifest.json")).read_text())


def test_backend_that_raises_at_load_fails_that_item_only(pytester):
    write_suite(pytester, CAMPAIGN)
    pytester.makeconftest('''
import pytest
from pytest_llenergy.backends.base import GenerationStats

class Session:
    load_time_s = 0.0
    engine_info = {}
    def prepare(self, w): return w
    def run(self, w): return GenerationStats(input_tokens=1, output_tokens=1, num_prompts=1, duration_s=0.01)
    def close(self): pass

@pytest.fixture
def lem_session(lem_experiment):
    if lem_experiment.config.workload.batch_size == 2:
        raise RuntimeError("CUDA out of memory. Tried to allocate 80.00 GiB")
    return Session()
''')
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    found = {r["config"]["workload"]["batch_size"]: r for r in results(pytester, "faults")}
    assert found[2]["status"] == "failed" and "CUDA out of memory" in found[2]["error"]
    assert found[1]["status"] == found[3]["status"] == "passed"
    entries = _manifest(pytester)["entries"].values()
    assert sorted(e["status"] for e in entries) == ["failed", "passed", "passed"]
    assert any("CUDA out of memory" in (e["error"] or "") for e in entries)


@pytest.mark.slow
def test_gpu_lost_mid_window_fails_the_item_and_keeps_partial_samples(pytester):
    write_suite(pytester, CAMPAIGN.replace("energy_source: estimate", "energy_source: nvml, baseline: {enabled: false}"), test='''
import time

def test_inference(lem_experiment, lem_session, lem_result, energy):
    with energy.measure("generate") as window:
        time.sleep(1.6)
        window.record(input_tokens=1, output_tokens=1)
    lem_result.record_generation(lem_session.run(lem_session.prepare(lem_experiment.config.workload)))
''')
    pytester.makeconftest(f'''
import sys, pytest
sys.path.insert(0, {str(TESTS_DIR)!r})
from energy.fake_pynvml import FakeNvml
from campaigns import FAKE_SESSION_CONFTEST
exec(FAKE_SESSION_CONFTEST)

FAKE = FakeNvml(1, lost_after=float("inf"))
sys.modules["pynvml"] = FAKE.module

@pytest.fixture(autouse=True)
def lose_gpu_during_second_item(request):
    if "-bs2-" in request.node.name:
        FAKE.lost_after = FAKE.now() + 1.3  # after the sampler's first drain of the driver buffer
    yield
    FAKE.lost_after = float("inf")
''')
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*energy source failed during window 'generate'*partial samples kept*"])
    lost = next(r for r in results(pytester, "faults") if r["config"]["workload"]["batch_size"] == 2)
    assert lost["status"] == "failed"
    assert any(f.startswith("source_error") for f in lost["energy"]["flags"])
    assert lost["energy"]["n_samples"] > 0


SETPRIV = shutil.which("setpriv")
#: as root, directory permissions bind only once CAP_DAC_OVERRIDE is dropped (root still owns everything)
UNPRIVILEGED = [SETPRIV, "--bounding-set=-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []


@pytest.mark.slow
@pytest.mark.requires("setpriv")
@pytest.mark.skipif(os.geteuid() == 0 and SETPRIV is None, reason="as root, needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
def test_unwritable_results_dir_fails_items_without_damage(pytester, tmp_path):
    write_suite(pytester, CAMPAIGN)
    out = tmp_path / "out"
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-results-dir", str(out), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    run_dir = next((out / "faults").iterdir())
    before = {p.name: p.read_bytes() for p in (run_dir / "experiments").iterdir()}
    os.chmod(run_dir / "experiments", 0o555)
    try:
        result = pytester.run(*UNPRIVILEGED, sys.executable, "-m", "pytest", "--lem-campaign", "campaign.yaml",
                              "--lem-results-dir", str(out), "--lem-run-id", run_dir.name, "-p", "no:cacheprovider",
                              timeout=300)
    finally:
        os.chmod(run_dir / "experiments", 0o755)
    result.assert_outcomes(failed=3)
    assert {p.name: p.read_bytes() for p in (run_dir / "experiments").iterdir()} == before


def test_write_failure_fails_the_item_with_the_reason(pytester):
    write_suite(pytester, CAMPAIGN)
    pytester.makeconftest(pytester.path.joinpath("conftest.py").read_text() + '''

import errno
import pytest
from pytest_llenergy.results import store

@pytest.fixture(autouse=True)
def disk_full_for_bs2(request, monkeypatch):
    if "-bs2-" in request.node.name:
        def full(path, data):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(store, "atomic_write_bytes", full)
''')
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*could not write the result of c1-transformers-gpt2-bs2-*No space left on device*"])
    assert len(results(pytester, "faults")) == 2
    leftovers = [p for p in (pytester.path / "lem-results" / "faults").glob("*/experiments/*") if p.suffix != ".json"]
    assert not leftovers
