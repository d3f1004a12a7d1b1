"""The README's budget example on every kind of source: adjusted energy where a baseline exists
(NVML, replay), raw energy otherwise (the CPU estimate), and the message says which."""

from __future__ import annotations

from pathlib import Path

from test_gates import constant_trace

TESTS_DIR = Path(__file__).parent

# A shortened idle baseline for plain tests (the default measures 30 s).
SHORT_BASELINE = '''
import sys, pytest
from pytest_llenergy.plugin.base import session_of
from pytest_llenergy.plugin.measurement.context import MeasurementContext, measurement_settings


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    settings = measurement_settings(config)
    settings.baseline.duration_s = 0.5
    settings.baseline.revalidate_every = 0
    session_of(config).context = MeasurementContext(config, settings)
'''

EXAMPLE = '''
import time, pytest

BUSY = []  # (start, end) of busy spells, time.monotonic()


def work(seconds):
    spell = [time.monotonic(), None]
    BUSY.append(spell)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    spell[1] = time.monotonic()


@pytest.mark.energy_budget(energy_per_output_token="{limit}")
def test_generate(energy):
    with energy.measure("generate") as w:
        work({seconds})
        w.record(output_tokens={tokens})
'''


def run_example(pytester, limit, tokens, *args, conftest=SHORT_BASELINE, seconds=0.3):
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_example=EXAMPLE.format(limit=limit, tokens=tokens, seconds=seconds))
    return pytester.runpytest("-p", "no:cacheprovider", "-v", *args)


class TestCpuEstimate:
    """No baseline on the CPU: the budget applies to raw energy (10 W/core x 0.3 s CPU <= 3 J)."""

    def test_readme_example_passes(self, pytester):
        run_example(pytester, "0.45 J", 10, "--lem-energy-source", "estimate").assert_outcomes(passed=1)

    def test_tight_budget_fails_on_raw_energy_and_says_so(self, pytester):
        result = run_example(pytester, "0.01 J", 10, "--lem-energy-source", "estimate")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*test_generate OVER BUDGET*",
                                     "*energy per output token * J > budget 0.01 J (*raw: no baseline-adjusted figure*"])
        result.stdout.no_fnmatch_line("*not measured*")


NVML_CONFTEST = SHORT_BASELINE + f'''
sys.path.insert(0, {str(TESTS_DIR)!r})
from energy.fake_pynvml import FakeGpu, FakeNvml


def watts(t):
    test, now = sys.modules.get("test_example"), FAKE.t0 + t
    spells = test.BUSY if test is not None else []
    return 400.0 if any(s <= now and (e is None or now <= e) for s, e in spells) else 200.0


FAKE = FakeNvml([FakeGpu(0, power=watts)])
sys.modules["pynvml"] = FAKE.module


@pytest.fixture(autouse=True)
def no_torch_priming(monkeypatch):
    # priming imports torch, which pytester's in-process runs cannot import twice
    import pytest_llenergy.energy.priming as priming
    monkeypatch.setattr(priming, "prime_gpu", lambda: None)
'''


class TestNvml:
    """Idle 200 W, busy 400 W for 1 s, 100 output tokens: raw >= 4 J/token, adjusted 2 J/token
    (the 100 ms counter step adds at most 0.4 J/token; a loaded machine stretching the window to
    1.2 s adds 0.4 J/token): a 3 J budget passes on adjusted energy and would fail on raw."""

    def test_readme_example_judges_adjusted_energy(self, pytester):
        result = run_example(pytester, "3 J", 100, "--lem-energy-source", "nvml", conftest=NVML_CONFTEST, seconds=1.0)
        result.assert_outcomes(passed=1)

    def test_breach_is_labelled_adjusted(self, pytester):
        result = run_example(pytester, "1 J", 100, "--lem-energy-source", "nvml", conftest=NVML_CONFTEST, seconds=1.0)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*energy per output token * J > budget 1 J (*, adjusted, n=1)*"])


class TestReplay:
    """A constant 300 W trace: adjusted energy is ~0 with a baseline, raw 300 W x 0.3 s without."""

    def test_readme_example_passes_on_adjusted_energy(self, pytester):
        constant_trace(pytester.path / "trace.csv")
        run_example(pytester, "0.45 J", 10, "--lem-energy-source", "replay:trace.csv").assert_outcomes(passed=1)

    def test_without_baseline_the_raw_figure_is_judged(self, pytester):
        constant_trace(pytester.path / "trace.csv")
        result = run_example(pytester, "0.45 J", 10, "--lem-energy-source", "replay:trace.csv", "--lem-no-baseline")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*energy per output token * J > budget 0.45 J (*raw: no baseline-adjusted figure*"])
