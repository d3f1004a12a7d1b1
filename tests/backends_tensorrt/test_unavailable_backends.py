"""A campaign listing engines that are not installed collects their items and skips them with the reason."""

from __future__ import annotations

import textwrap

from pytest_llenergy.backends import session as engine_session

CAMPAIGN = """
name: engines
defaults:
  model: {name: fake-org/fake-model}
  precision: float16
  workload: {num_prompts: 1, input_tokens: 4, output_tokens: 2}
grid:
  backends: [vllm, tensorrt]
"""
TEST = """
def test_inference(lem_experiment, lem_session, lem_result):
    raise AssertionError("an unavailable backend must not run")
"""


def test_uninstalled_engines_are_collected_and_skipped_with_the_reason(pytester, monkeypatch):
    monkeypatch.setattr(engine_session, "find_spec", lambda name: None)  # neither engine is installed
    pytester.makepyfile(test_engines=TEST)
    (pytester.path / "engines.yaml").write_text(textwrap.dedent(CAMPAIGN))
    result = pytester.runpytest_inprocess("--lem-campaign", "engines.yaml", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*backend 'vllm' unavailable: vllm is not installed*"])
    result.stdout.fnmatch_lines(["*backend 'tensorrt' unavailable: tensorrt_llm is not installed*"])
