"""Thread count for CPU inference: one per available core, shared among workers, unless the user chose."""

from __future__ import annotations

import os

from pytest_llenergy.energy import threads
from pytest_llenergy.energy.threads import apply_threads, load_warning, plan_threads


def test_one_thread_per_available_core_shared_among_workers():
    assert plan_threads({}, cores=8).threads == 8
    assert plan_threads({}, cores=8, workers=2).threads == 4
    assert plan_threads({}, cores=2, workers=4).threads == 1  # never zero


def test_the_users_choice_wins():
    plan = plan_threads({"OMP_NUM_THREADS": "3"}, cores=8)
    assert plan.threads == 3 and plan.chosen_by.startswith("user")
    assert plan_threads({"OMP_NUM_THREADS": "junk"}, cores=8).threads == 8


def test_available_cores_follow_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 5}, raising=False)
    assert threads.available_cores() == 2


def test_apply_sets_the_variables_without_overriding_the_user():
    environ = {"MKL_NUM_THREADS": "1"}
    apply_threads(plan_threads({}, cores=4), environ)
    assert environ == {"MKL_NUM_THREADS": "1", "OMP_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "4"}


def test_load_warning_only_when_the_load_exceeds_the_cores(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (5.0, 1.0, 1.0))
    assert "load average 5.0 > 2 available core(s)" in load_warning(2)
    assert load_warning(8) is None


def test_the_environment_records_the_thread_settings():
    from pytest_llenergy.energy import collect_environment

    record = collect_environment(None)["threads"]
    assert record["available_cores"] >= 1 and "OMP_NUM_THREADS" in record["variables"]


def test_plugin_sets_threads_before_tests_and_respects_the_user(pytester, monkeypatch):
    pytester.makepyfile("""
        import os

        def test_threads(energy):  # a run that uses the plugin (one that does not is left alone)
            print("THREADS", os.environ["OMP_NUM_THREADS"])
    """)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LLENERGY_THREADS", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([f"*THREADS {threads.available_cores()}*"])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("LLENERGY_THREADS", raising=False)
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*THREADS 1*"])


def test_campaign_header_states_threads_and_warns_when_loaded(pytester, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from campaigns import write_suite

    write_suite(pytester, "name: t\ndefaults: {model: gpt2}\nmeasurement: {energy_source: estimate}\n")
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 1.0, 1.0))
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["llenergy: threads: * CPU thread(s) for inference (* available cores; set by *)",
                                 "llenergy: WARNING: machine is loaded: 1-minute load average 99.0 > *"])
