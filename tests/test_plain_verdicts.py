"""Plain `energy` tests that cannot mislead: tokens recorded after the block count, short windows have
their own figure, budgets say which figure they judged, verdicts reach --lem-json, the energy source is
named up front, and a replayed GPU trace says (and shortens) its idle baseline."""

from __future__ import annotations

import json

import pytest

# Must pass / must fail on the CPU estimate and on the replayed H200 trace alike, in any order.
DONE_WHEN = '''
import time, pytest


def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.energy_budget(energy_per_output_token="10 J")
def test_record_after_the_block_5ms(energy):
    with energy.measure("generate") as w:
        busy(0.005)
    w.record(output_tokens=100)


@pytest.mark.energy_budget(energy_per_output_token="10 J")
def test_record_inside_the_block_20ms(energy):
    with energy.measure("generate") as w:
        busy(0.02)
        w.record(output_tokens=100)


@pytest.mark.energy_budget(energy_per_output_token=1e-6, adjusted=False)
def test_tight_raw_budget_after_the_block_50ms(energy):
    with energy.measure("generate") as w:
        busy(0.05)
    w.record(output_tokens=100)


@pytest.mark.energy_budget(energy="100 J")
def test_idle_window_3s(energy):
    with energy.measure("idle"):
        time.sleep(3.0)


@pytest.mark.energy_budget(mean_power="0.1 W")
def test_busy_window_over_its_power_budget_100ms(energy):
    with energy.measure("busy"):
        busy(0.1)


@pytest.mark.energy_budget(energy_per_output_token="10 J")
def test_no_tokens_recorded_1s(energy):
    with energy.measure("generate"):
        busy(1.0)
'''
PASS = ("test_record_after_the_block_5ms", "test_record_inside_the_block_20ms", "test_idle_window_3s")
FAIL = ("test_tight_raw_budget_after_the_block_50ms", "test_busy_window_over_its_power_budget_100ms",
        "test_no_tokens_recorded_1s")
SOURCES = {"estimate": ("--lem-energy-source", "estimate"),
           "replay-h200": ("--lem-energy-source", "replay?counter_period=0.1")}


def verdicts(result: pytest.RunResult) -> dict[str, str]:
    """Each test's verdict from the -v lines (``test_done.py::name PASSED`` / ``OVER BUDGET``)."""
    out = {}
    for line in result.outlines:
        head, _, status = line.partition(" ")
        name = head.rpartition("::")[2]
        if head.startswith("test_done.py::") and name in (*PASS, *FAIL):
            out[name] = "passed" if status.startswith("PASSED") else "failed"
    return out


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
def test_right_verdicts_in_any_order_alone_and_together(pytester: pytest.Pytester, source: str) -> None:
    pytester.makepyfile(test_done=DONE_WHEN)
    args = ("-p", "no:cacheprovider", "-v", *SOURCES[source])
    names = [*PASS, *FAIL]
    for order in (names, names[::-1]):
        result = pytester.runpytest(*[f"test_done.py::{n}" for n in order], *args, "--lem-json", "out.json")
        assert verdicts(result) == {**dict.fromkeys(PASS, "passed"), **dict.fromkeys(FAIL, "failed")}, result.outlines
    for name in names:
        if name == "test_idle_window_3s":
            continue  # its verdict alone is that of the whole file: no window before it to borrow from
        alone = verdicts(pytester.runpytest(f"test_done.py::{name}", *args))
        assert alone == {name: "passed" if name in PASS else "failed"}, (name, alone)
    text = "\n".join(result.outlines)
    basis = "adjusted" if source.startswith("replay") else "raw: no baseline-adjusted figure (the estimate source"
    assert "energy per output token: not measured (no output tokens recorded: call w.record(output_tokens=n)" in text
    assert "> budget 0.001 mJ (" in text and "raw, n=1" in text  # adjusted=False: the raw figure, named
    payload = json.loads((pytester.path / "out.json").read_text())
    checks = {v["key"].split("::")[-1]: v["budget"] for v in payload["verdicts"]}
    assert set(checks) == set(names)
    assert checks["test_record_after_the_block_5ms"]["checks"][0]["basis"].startswith(basis)
    assert checks["test_record_after_the_block_5ms"]["failed"] is False
    windows = {w["key"].split("::")[-2]: w for w in payload["windows"]}
    assert windows["test_record_after_the_block_5ms"]["metrics"]["energy_per_output_token_j"]["values"][0] > 0


@pytest.mark.parametrize("placement", ["inside", "after"])
def test_tokens_recorded_after_the_block_reach_every_output(pytester: pytest.Pytester, placement: str) -> None:
    inside, after = ("        w.record(output_tokens=100)\n", "") if placement == "inside" else \
        ("", "    w.record(output_tokens=100)\n")
    pytester.makepyfile(test_one=(
        "import pytest\n\n@pytest.mark.energy_budget(energy_per_output_token='10 J')\n"
        "def test_generate(energy, record_property):\n"
        "    with energy.measure('generate') as w:\n        sum(range(200000))\n" + inside + after))
    args = ("-p", "no:cacheprovider", "--lem-energy-source", "estimate")
    result = pytester.runpytest(*args, "--lem-json", "out.json", "--lem-save", "base", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1)
    row = next(line for line in result.outlines if line.startswith("test_one.py::test_generate::generate"))
    assert row.split()[5] != "-"  # J/out-token in the table
    window = json.loads((pytester.path / "out.json").read_text())["windows"][0]
    assert window["metrics"]["energy_per_output_token_j"]["n"] == 1
    saved = json.loads(next((pytester.path / ".lem-benchmarks").glob("*/0001_base.json")).read_text())
    assert saved["experiments"]["test_one.py::test_generate::generate"]["metrics"]["energy_per_output_token_j"]
    assert "energy.generate.energy_per_output_token_j" in (pytester.path / "junit.xml").read_text()
    compared = pytester.runpytest(*args, "--lem-compare", "base", "--lem-compare-fail", "energy_per_output_token:1000%")
    compared.assert_outcomes(passed=1)
    compared.stdout.fnmatch_lines(["*test_generate::generate: energy_per_output_token * ok*"])


def test_record_after_the_test_raises_with_where_to_call_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_late='''
import pytest

KEPT = []


def test_measure(energy):
    with energy.measure("generate") as w:
        pass
    KEPT.append(w)


def test_too_late():
    with pytest.raises(RuntimeError, match="record.. came too late .the test's report was already made.; call w.record"):
        KEPT[0].record(output_tokens=1)
''')
    pytester.runpytest("-p", "no:cacheprovider", "--lem-energy-source", "estimate").assert_outcomes(passed=2)


SHORT_AFTER_BUSY = '''
import time, pytest


def test_busy(energy):
    with energy.measure("busy"):
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            pass


@pytest.mark.energy_budget(energy_per_output_token="0.1 mJ")
def test_sleep_10ms(energy):
    with energy.measure("sleep") as w:
        time.sleep(0.01)
    w.record(output_tokens=300)
'''


@pytest.mark.parametrize("hz", ["10", "100"])
def test_a_short_window_never_borrows_the_previous_tests_figure(pytester: pytest.Pytester, hz: str) -> None:
    """Finding 2: a 10 ms sleep window after a busy test read ~0.09 J (the busy test's rate) and failed
    its 0.1 mJ/token budget in the file while passing alone."""
    pytester.makepyfile(test_short=SHORT_AFTER_BUSY)
    args = ("-p", "no:cacheprovider", "--lem-energy-source", "estimate", "--lem-sample-hz", hz, "--lem-json", "out.json")
    pytester.runpytest(*args).assert_outcomes(passed=2)
    pytester.runpytest("test_short.py::test_sleep_10ms", *args).assert_outcomes(passed=1)
    windows = {w["key"]: w for w in json.loads((pytester.path / "out.json").read_text())["windows"]}
    sleep = windows["test_short.py::test_sleep_10ms::sleep"]["metrics"]["energy_j"]["mean"]
    assert 0 < sleep < 0.03  # its own few ms of CPU time (sampler excluded), never 0 and never the busy rate


def test_header_names_the_source_and_the_table_explains_its_flags(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_h="def test_w(energy):\n    with energy.measure('w'):\n        pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--lem-energy-source", "estimate")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "llenergy: energy source: estimate: process CPU time x 10 W/core",
        "llenergy: NOTE: ESTIMATED energy (no hardware counter): treat figures as approximate",
        "*NOTE: ESTIMATED energy*",
        "baseline: none (the estimate source has no idle baseline): budgets judge raw energy",
        "flags: est = estimated*nosamples = no power sample inside the window*",
    ])
    plain = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:llenergy")
    plain.stdout.no_fnmatch_line("*energy source*")


def test_replay_says_it_measures_a_short_idle_baseline_once(pytester: pytest.Pytester) -> None:
    """Finding 6: a 12 ms test under replay spent 30 s on an unannounced idle baseline."""
    pytester.makepyfile(test_r='''
def test_a(energy):
    with energy.measure("w"):
        pass


def test_b(energy):
    with energy.measure("w"):
        pass


def test_no_window(energy):
    pass
''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "--lem-energy-source", "replay", "--lem-json", "out.json")
    result.assert_outcomes(passed=3)
    notices = [line for line in result.outlines if "measuring the idle baseline" in line]
    assert notices == ["llenergy: measuring the idle baseline (replay, 2 s) before the first energy window; kept "
                       "3600 s in the pytest cache (--lem-no-baseline: raw energy only)"]
    assert result.duration < 25
    windows = json.loads((pytester.path / "out.json").read_text())["windows"]
    assert {w["baseline"]["method"] for w in windows} == {"fresh"}
    ages = sorted(w["baseline"]["age_s"] for w in windows)
    assert 0 <= ages[0] <= ages[1] and all(w["metrics"]["energy_adjusted_j"] for w in windows)
    lazy = pytester.runpytest("-p", "no:cacheprovider", "--lem-energy-source", "replay", "test_r.py::test_no_window")
    lazy.assert_outcomes(passed=1)  # a test that measures nothing waits for no baseline
    lazy.stdout.no_fnmatch_line("*measuring the idle baseline*")


@pytest.mark.parametrize("source", SOURCES)
def test_the_shipped_budget_example_passes(pytester: pytest.Pytester, source: str) -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "energy_suites" / "test_budgets.py"
    pytester.makepyfile(test_budgets=example.read_text())
    result = pytester.runpytest("-p", "no:cacheprovider", *SOURCES[source])
    result.assert_outcomes(passed=2)
    row = next(line for line in result.outlines if line.startswith("test_budgets.py::test_tokens_counted_after"))
    assert row.split()[5] != "-"  # J/out-token: the tokens recorded after the block


def test_a_budget_judges_every_window_of_a_loop_not_the_first(pytester: pytest.Pytester) -> None:
    """Five warm 5 ms windows after a 0.5 s cold one: their mean (<= 0.88 J) is within 1.2 J, the first alone
    (>= 1.2 J at a quarter of a core) would not be; the verdict names n = 6."""
    pytester.makepyfile(test_loop='''
import time, pytest


@pytest.mark.energy_budget(energy="1.2 J")
def test_generate(energy):
    for seconds in (0.5, 0.005, 0.005, 0.005, 0.005, 0.005):
        with energy.measure("generate") as w:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass
        w.record(output_tokens=10)
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "--lem-energy-source", "estimate", "--lem-json", "out.json")
    result.assert_outcomes(passed=1)
    check = json.loads((pytester.path / "out.json").read_text())["verdicts"][0]["budget"]["checks"][0]
    assert check["n"] == 6 and check["value"] <= 1.2
