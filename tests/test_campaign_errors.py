"""Malformed and hostile campaigns: a one-screen usage error (exit 4) naming file and field; nothing runs."""

from __future__ import annotations

import fnmatch

import pytest
from campaigns import write_suite

OK = "name: ok\ndefaults: {model: gpt2}\n"

CORPUS: list[tuple[str, str, str]] = [
    ("unknown-top-key", "name: x\ncycels: 3\ndefaults: {model: gpt2}\n", "*campaign.yaml: cycels: unknown key*"),
    ("unknown-grid-shared-key", "name: x\ndefaults: {model: gpt2}\ngrid: {shared: {precison: [float16]}}\n",
     "*grid.shared.precison: unknown key*"),
    ("unknown-nested-key", "name: x\ndefaults: {model: gpt2, workload: {batchsize: 2}}\n", "*defaults.workload.batchsize: unknown key*"),
    ("missing-name", "defaults: {model: gpt2}\n", "*name: required field is missing*"),
    ("cycles-zero", "name: x\ncycles: 0\ndefaults: {model: gpt2}\n", "*cycles: cycles must be between 1 and 10000*"),
    ("cycles-negative", "name: x\ncycles: -3\ndefaults: {model: gpt2}\n", "*cycles: cycles must be between 1 and 10000*"),
    ("adaptive-min-gt-max", "name: x\ncycles: {min: 5, max: 3}\ndefaults: {model: gpt2}\n", "*cycles: cycles.max must be >= cycles.min*"),
    ("adaptive-bad-metric", "name: x\ncycles: {metric: joules}\ndefaults: {model: gpt2}\n", "*cycles.metric: Input should be*"),
    ("group-by-unknown", "name: x\ngroup_by: [precison]\ndefaults: {model: gpt2}\n", "*group_by: 'precison': unknown key*"),
    ("budget-unknown-metric", "name: x\ndefaults: {model: gpt2}\nbudgets: [{limits: {joules: 3}}]\n", "*budgets[[]0[]]: unknown budget keyword(s) joules*"),
    ("budget-bad-unit", "name: x\ndefaults: {model: gpt2}\nbudgets: [{limits: {energy: 3 parsecs}}]\n", "*budgets[[]0[]]: unknown energy unit 'parsecs'*"),
    ("measurement-bad-source", "name: x\ndefaults: {model: gpt2}\nmeasurement: {energy_source: wattmeter}\n", "*measurement.energy_source: unknown energy source 'wattmeter'*"),
    ("measurement-sample-hz", "name: x\ndefaults: {model: gpt2}\nmeasurement: {sample_hz: 1000}\n", "*measurement.sample_hz: Input should be less than or equal to 100*"),
    ("cycles-wrong-type", "name: x\ncycles: many\ndefaults: {model: gpt2}\n", "*cycles: Input should be a valid integer*"),
    ("bad-order", "name: x\norder: random\ndefaults: {model: gpt2}\n", "*order: Input should be 'interleaved', 'shuffled' or 'grouped'*"),
    ("unknown-backend", "name: x\ndefaults: {model: gpt2, backend: onnx}\n", "*defaults.backend: unknown backend 'onnx'*"),
    ("unknown-grid-backend", "name: x\ndefaults: {model: gpt2}\ngrid: {backends: [transformers, jax]}\n", "*grid.backends[[]1[]]: unknown backend 'jax'*"),
    ("bad-precision", "name: x\ndefaults: {model: gpt2, precision: fp8}\n", "*defaults.precision: Input should be 'float32', 'float16' or 'bfloat16'*"),
    ("output-tokens-zero", "name: x\ndefaults: {model: gpt2, workload: {output_tokens: 0}}\n", "*defaults.workload.output_tokens: Input should be greater than or equal to 1*"),
    ("section-mismatch", "name: x\ndefaults: {model: gpt2}\nexperiments: [{backend: vllm, transformers: {attn_implementation: eager}}]\n",
     "*experiments[[]0[]]: a `transformers:` section does not apply to backend 'vllm'*"),
    ("tensorrt-float32", "name: x\nexperiments: [{backend: tensorrt, model: gpt2, precision: float32}]\n", "*TensorRT-LLM does not run float32*"),
    ("bad-attn", "name: x\ndefaults: {model: gpt2, transformers: {attn_implementation: fast}}\n", "*defaults.transformers.attn_implementation*"),
    ("no-model", "name: x\n", "*no model: set defaults.model*"),
    ("empty-file", "", "*the file is empty*"),
    ("top-level-list", "- name: x\n", "*top level must be a mapping*"),
    ("syntax-error", "name: x\ndefaults: {model: gpt2\n", "*YAML error at line *, column *"),
    ("tab-indent", "name: x\ndefaults:\n\tmodel: gpt2\n", "*YAML error at line 3*"),
    ("duplicate-yaml-key", "name: x\nname: y\ndefaults: {model: gpt2}\n", "*duplicate key 'name'*"),
    ("python-tag", "name: !!python/object/apply:os.system ['touch pwned']\n", "*could not determine a constructor*python/object/apply*"),
    ("python-name-tag", "name: x\ndefaults: !!python/name:os.system {}\n", "*could not determine a constructor*"),
    ("alias-bomb", "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                   "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\nname: x\n",
     "*alias bomb*"),
    ("name-with-slash", "name: ../../etc\ndefaults: {model: gpt2}\n", "*name: names use letters, digits, - and _*"),
    ("name-with-dotdot", "name: x\ndefaults: {model: gpt2}\nexperiments: [{name: ..}]\n", "*experiments[[]0[]].name: names use letters*"),
    ("duplicate-experiment-names", "name: x\ndefaults: {model: gpt2}\nexperiments: [{name: a}, {name: a, precision: float16}]\n",
     "*duplicate experiment name 'a'*"),
    ("results-dir-absolute", "name: x\nresults_dir: /tmp/elsewhere\ndefaults: {model: gpt2}\n", "*results_dir: must be a relative path*"),
    ("results-dir-dotdot", "name: x\nresults_dir: ../out\ndefaults: {model: gpt2}\n", "*results_dir: must be a relative path*"),
    ("override-unknown-backend", "name: x\ndefaults: {model: gpt2}\ngrid: {backend_overrides: {jax: {x: [1]}}}\n",
     "*grid.backend_overrides.jax: unknown backend*"),
    ("override-unknown-key", "name: x\ndefaults: {model: gpt2}\ngrid: {backend_overrides: {transformers: {attn: [eager]}}}\n",
     "*grid.backend_overrides.transformers.attn: unknown key*"),
    ("override-backend-not-in-grid", "name: x\ndefaults: {model: gpt2}\ngrid: {backends: [transformers], backend_overrides: {vllm: {max_num_seqs: [1]}}}\n",
     "*grid.backend_overrides.vllm: backend is not in grid.backends*"),
    ("grid-sets-backend-in-shared", "name: x\ndefaults: {model: gpt2}\ngrid: {shared: {backend: [vllm]}}\n", "*set backends and models with grid.backends*"),
    ("streaming-batch", "name: x\ndefaults: {model: gpt2, workload: {streaming: true, batch_size: 4}}\n", "*streaming*needs batch_size: 1*"),
    ("empty-model-name", "name: x\ndefaults: {model: ''}\n", "*model.name: model name cannot be empty*"),
    ("negative-seed", "name: x\nseed: -1\ndefaults: {model: gpt2}\n", "*seed: Input should be greater than or equal to 0*"),
    ("numeric-key", "name: x\n1: 2\ndefaults: {model: gpt2}\n", "*keys must be strings*"),
]


@pytest.mark.parametrize("case,text,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_campaign_is_a_short_usage_error(pytester, case, text, expected):
    path = write_suite(pytester, "")
    path.write_text(text)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: llenergy: *campaign.yaml*"])
    assert fnmatch.fnmatch(result.stderr.str(), expected), result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert len(result.stderr.lines) < 25
    assert not (pytester.path / "lem-results").exists()
    assert not (pytester.path / "pwned").exists()


def test_non_utf8_bytes(pytester):
    path = write_suite(pytester, "")
    path.write_bytes(b"name: caf\xe9\ndefaults: {model: gpt2}\n")
    result = pytester.runpytest("--lem-campaign", "campaign.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*campaign.yaml: not UTF-8 text (byte 9*"])


def test_huge_file_is_refused_before_parsing(pytester):
    path = write_suite(pytester, "")
    with path.open("w") as handle:
        handle.write("name: x\ndescription: '")
        handle.write("a" * (50 * 1024 * 1024))
        handle.write("'\n")
    result = pytester.runpytest("--lem-campaign", "campaign.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*file is 52.4 MB; campaign files are limited to 2 MB*"])


def test_missing_file(pytester):
    write_suite(pytester, OK)
    result = pytester.runpytest("--lem-campaign", "nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nope.yaml: file not found*"])


def test_results_dir_escaping_through_a_symlink(pytester, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (pytester.path / "escape").symlink_to(outside)
    write_suite(pytester, OK + "results_dir: escape/results\n")
    result = pytester.runpytest("--lem-campaign", "campaign.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*results_dir: 'escape/results' resolves to *, outside * (symlink?)*"])
    assert not any(outside.iterdir())


def test_bad_cycles_option(pytester):
    write_suite(pytester, OK)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lem-cycles: cycles must be between 1 and 10000*"])
