"""Plain tests (the ``energy`` fixture without a campaign): table, save, compare, JSON, labels."""

from __future__ import annotations

import json

import pytest
from test_gates import constant_trace

PLAIN = """
import time


def test_generate(energy):
    for _ in range(4):
        with energy.measure("generate") as w:
            time.sleep(0.25)
            w.record(input_tokens=10, output_tokens=20)


def test_other(energy):
    with energy.measure("load"):
        time.sleep(0.2)
"""
REPLAY = ("--lem-energy-source", "replay:trace.csv", "--lem-no-baseline", "-p", "no:cacheprovider")


@pytest.fixture
def plain(pytester):
    constant_trace(pytester.path / "trace.csv")
    pytester.makepyfile(test_plain=PLAIN)
    return pytester


def test_table_lists_every_window_with_n_and_interval(plain):
    result = plain.runpytest(*REPLAY)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*llenergy: energy windows*",
        "*2 energy window(s) in plain tests*",
        "window * n * energy J * adjusted J * J/out-token * duration s * flags",
        "test_plain.py::test_generate::generate * 4 * ±*%*sim",
        "test_plain.py::test_other::load * 1 *sim",
    ])


def test_save_then_compare_fails_a_regression_with_its_own_label(plain):
    plain.runpytest(*REPLAY, "--lem-save", "plain").assert_outcomes(passed=2)
    saved = list((plain.path / ".lem-benchmarks").glob("*/0001_plain.json"))
    assert len(saved) == 1
    record = json.loads(saved[0].read_text())
    entry = record["experiments"]["test_plain.py::test_generate::generate"]
    assert entry["n"] == 4 and len(entry["metrics"]["energy_j"]) == 4
    result = plain.runpytest("--lem-energy-source", "replay:trace.csv?scale=1.5", "--lem-no-baseline",
                             "-p", "no:cacheprovider", "--lem-compare", "plain",
                             "--lem-compare-fail", "energy_per_output_token:5%", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_generate REGRESSION*", "Regression against the saved run: vs saved run * energy_per_output_token * REGRESSION*", "compare: * vs saved 1 plain*"])
    result.stdout.no_fnmatch_line("*OVER BUDGET*")


def test_unchanged_rerun_passes_the_comparison(plain):
    plain.runpytest(*REPLAY, "--lem-autosave").assert_outcomes(passed=2)
    result = plain.runpytest(*REPLAY, "--lem-compare", "--lem-compare-fail", "energy_per_output_token:5%")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_generate::generate: energy_per_output_token * ok*"])


def test_json_report_without_a_campaign(plain):
    plain.runpytest(*REPLAY, "--lem-json", "out.json").assert_outcomes(passed=2)
    payload = json.loads((plain.path / "out.json").read_text())
    windows = {w["key"]: w for w in payload["windows"]}
    generate = windows["test_plain.py::test_generate::generate"]
    assert generate["n"] == 4 and generate["metrics"]["energy_j"]["ci_low"] is not None
    assert generate["metrics"]["energy_j"]["ci_low"] <= generate["metrics"]["energy_j"]["mean"]
    assert windows["test_plain.py::test_other::load"]["metrics"]["energy_j"]["ci_low"] is None  # n = 1


@pytest.mark.slow
def test_windows_travel_from_xdist_workers(plain):
    pytest.importorskip("xdist")
    result = plain.runpytest(*REPLAY, "-n", "2", "--lem-json", "out.json")
    result.assert_outcomes(passed=2)
    keys = {w["key"] for w in json.loads((plain.path / "out.json").read_text())["windows"]}
    assert keys == {"test_plain.py::test_generate::generate", "test_plain.py::test_other::load"}


def test_plain_windows_are_saved_with_the_campaign(pytester):
    from campaigns import write_suite
    from test_gates import TEST, campaign

    constant_trace(pytester.path / "trace.csv")
    write_suite(pytester, campaign(1), test=TEST)
    pytester.makepyfile(test_plain=PLAIN)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider", "--lem-save", "both",
                                "--lem-json", "out.json")
    result.assert_outcomes(passed=3)
    saved = json.loads(next((pytester.path / ".lem-benchmarks").glob("*/0001_both.json")).read_text())
    keys = set(saved["experiments"])
    assert "test_plain.py::test_generate::generate" in keys and any(k.startswith("transformers-") for k in keys)
    assert len(list((pytester.path / ".lem-benchmarks").glob("*/*.json"))) == 1  # one saved run, not two
    payload = json.loads((pytester.path / "out.json").read_text())
    assert payload["campaign"] == "gates" and {w["key"] for w in payload["windows"]} >= {"test_plain.py::test_other::load"}
