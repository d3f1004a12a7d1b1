"""Mistakes caught once, before the first item: one line each, exit 4, no traceback."""

from __future__ import annotations

import re

import pytest

PLUGIN_SESSION_TEST = '''
def test_inference(lem_experiment, lem_session, lem_result, energy):
    raise AssertionError("no item may run when the campaign cannot")
'''


def campaign(pytester, defaults, name="pf"):
    pytester.makepyfile(test_suite=PLUGIN_SESSION_TEST)
    (pytester.path / "c.yaml").write_text(
        f"name: {name}\ndefaults: {defaults}\ngrid: {{shared: {{workload.batch_size: [1, 2]}}}}\n"
        "measurement: {energy_source: estimate}\n")


def usage_error(result, *lines):
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(list(lines))
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    if re.search(r"^=+ .* in [\d.]+s", result.stdout.str(), re.M):
        result.assert_outcomes()  # nothing ran
    else:
        assert "::" not in result.stdout.str()  # refused before the session started: no item, no summary


def test_unknown_architecture_and_missing_prompt_file_once_each(pytester):
    campaign(pytester, "{model: {name: no-such-arch, weights: random}, workload: {prompts: {file: missing.txt}}}")
    result = pytester.runpytest("--lem-campaign", "c.yaml", "-p", "no:cacheprovider")
    usage_error(result, "ERROR: llenergy: model.name: * 'no-such-arch' is neither (shipped: *) (2 experiments: *)",
                "ERROR: llenergy: workload.prompts.file: */missing.txt: prompt file not found (2 experiments: *)")
    assert result.stderr.str().count("no-such-arch' is neither") == 1


def test_uncached_hub_model_offline_is_refused_without_a_lookup(pytester, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    campaign(pytester, "{model: org/not-cached-model}")
    result = pytester.runpytest("--lem-campaign", "c.yaml", "-p", "no:cacheprovider")
    usage_error(result, "ERROR: llenergy: model.name: 'org/not-cached-model' is not a local directory and not in the "
                        "Hugging Face cache (HF_HUB_OFFLINE is set*")


def test_missing_local_model_directory(pytester):
    campaign(pytester, "{model: ./models/nothing-here}")
    result = pytester.runpytest("--lem-campaign", "c.yaml", "-p", "no:cacheprovider")
    usage_error(result, "ERROR: llenergy: model.name: './models/nothing-here': no such model directory*")


def test_unwritable_results_directory(pytester):
    campaign(pytester, "{model: {name: tiny-llama, weights: random}}")
    (pytester.path / "blocker").write_text("a file where a directory must go")
    result = pytester.runpytest("--lem-campaign", "c.yaml", "--lem-results-dir", "blocker/out", "-p", "no:cacheprovider")
    usage_error(result, "ERROR: llenergy: results directory (--lem-results-dir / results_dir): */blocker/out/pf is not writable*")


def test_nvml_without_nvml_in_plain_tests(pytester, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from energy.fake_pynvml import FakeNvml

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(init_error=12).module)
    pytester.makepyfile("""
        def test_a(energy):
            pass

        def test_b(energy):
            pass
    """)
    result = pytester.runpytest("--lem-energy-source", "nvml", "-p", "no:cacheprovider")
    usage_error(result, "ERROR: llenergy: energy source 'nvml': NVML init failed*")
    assert result.stderr.str().count("NVML init failed") == 1


def test_plain_tests_without_the_energy_fixture_are_not_checked(pytester):
    pytester.makepyfile("def test_a():\n    pass\n")
    pytester.runpytest("--lem-energy-source", "nvml", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_tests_own_session_fixture_is_not_checked(pytester):
    from campaigns import write_suite

    write_suite(pytester, "name: own\ndefaults: {model: org/not-cached-model}\nmeasurement: {energy_source: estimate}\n")
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider").assert_outcomes(passed=1)


class TestUnderXdist:
    """``-n 2``: the same lines, once, exit 4, before any worker runs an item (workers hand their findings
    to the controller; the results directory is checked before workers start)."""

    @pytest.mark.slow  # starts two workers (~17 s on a loaded 2-core machine)
    def test_unknown_model_and_missing_prompt_file_once_each(self, pytester):
        campaign(pytester, "{model: {name: no-such-arch, weights: random}, workload: {prompts: {file: missing.txt}}}")
        result = pytester.runpytest("--lem-campaign", "c.yaml", "-p", "no:cacheprovider", "-n", "2")
        usage_error(result, "ERROR: llenergy: model.name: * 'no-such-arch' is neither (shipped: *) (2 experiments: *)",
                    "ERROR: llenergy: workload.prompts.file: */missing.txt: prompt file not found (2 experiments: *)")
        err = result.stderr.str()
        assert err.count("no-such-arch' is neither") == 1 and err.count("prompt file not found") == 1
        result.stdout.fnmatch_lines(["2 workers [[]0 items[]]"])  # the workers kept no item
        assert not list(pytester.path.glob("lem-results/pf/*/results/*"))

    def test_unwritable_results_directory_before_workers_start(self, pytester):
        campaign(pytester, "{model: {name: tiny-llama, weights: random}}")
        (pytester.path / "blocker").write_text("a file where a directory must go")
        result = pytester.runpytest("--lem-campaign", "c.yaml", "--lem-results-dir", "blocker/out", "-p",
                                    "no:cacheprovider", "-n", "2")
        usage_error(result, "ERROR: llenergy: results directory (--lem-results-dir / results_dir): */blocker/out/pf "
                            "is not writable*")
        assert result.stderr.str().count("is not writable") == 1
        assert "workers" not in result.stdout.str()  # refused before xdist started any

    def test_bad_option_value_before_workers_start(self, pytester):
        campaign(pytester, "{model: {name: tiny-llama, weights: random}}")
        result = pytester.runpytest("--lem-campaign", "c.yaml", "--lem-gap-max-wait", "-5", "-p", "no:cacheprovider",
                                    "-n", "2")
        usage_error(result, "*argument --lem-gap-max-wait: a duration cannot be negative (got '-5')")
        assert "workers" not in result.stdout.str()

    @pytest.mark.slow  # starts two workers
    def test_unavailable_energy_source_in_plain_tests_once(self, pytester):
        from pytest_llenergy.energy import resolve_source

        try:
            resolve_source("nvml")[0].close()
            pytest.skip("NVML works on this machine: the workers' real pynvml cannot fail")
        except Exception:
            pass
        pytester.makepyfile("def test_a(energy):\n    pass\n\ndef test_b(energy):\n    pass\n")
        result = pytester.runpytest("--lem-energy-source", "nvml", "-p", "no:cacheprovider", "-n", "2")
        usage_error(result, "ERROR: llenergy: energy source 'nvml': *")
        assert result.stderr.str().count("energy source 'nvml'") == 1


def test_uncached_hub_model_without_network_is_one_line_not_minutes_of_retries(pytester, monkeypatch):
    """No HF_HUB_OFFLINE, no network (the endpoint refuses): one line, exit 4, before any retry."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(pytester.path / "empty-hub-cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused at once
    campaign(pytester, "{model: {name: org/not-cached-model}}")
    result = pytester.runpytest("--lem-campaign", "c.yaml", "-p", "no:cacheprovider")
    usage_error(result, "ERROR: llenergy: model.name: 'org/not-cached-model' is not a local directory and not in the "
                        "Hugging Face cache, and http://127.0.0.1:9 is not reachable (*)*")
    assert len([line for line in result.stderr.lines if line.strip()]) == 1


def test_refused_run_writes_nothing_and_lem_config_show_refuses_it_too(pytester, capsys):
    """One validation for pytest and `lem config show`; a run refused before any item leaves no run folder."""
    from pytest_llenergy.cli import main

    campaign(pytester, "{model: {name: no-such-arch, weights: random}}")
    result = pytester.runpytest("--lem-campaign", "c.yaml", "-p", "no:cacheprovider")
    usage_error(result, "ERROR: llenergy: model.name: * 'no-such-arch' is neither *")
    assert not (pytester.path / "lem-results").exists()
    assert main(["config", "show", str(pytester.path / "c.yaml")]) == 2
    err = capsys.readouterr().err
    assert "lem config show: model.name: " in err and "'no-such-arch' is neither" in err


def test_unreachable_results_directory_is_the_only_output(pytester):
    """`--lem-results-dir /proc/nope`: the error line comes before any header line (and nothing else)."""
    campaign(pytester, "{model: {name: tiny-llama, weights: random}}")
    result = pytester.runpytest_subprocess("--lem-campaign", "c.yaml", "--lem-results-dir", "/proc/nope",
                                           "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning")
    usage_error(result, "ERROR: llenergy: results directory (--lem-results-dir / results_dir): /proc/nope/pf is not "
                        "writable*")
    assert "llenergy" not in result.stdout.str() and [line for line in result.stderr.lines if line.strip()] == [
        result.stderr.lines[0]]
