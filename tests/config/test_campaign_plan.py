"""Campaign files straight through load_plan (no pytest run): the malformed corpus's messages, safe YAML,
and what a good campaign expands to (grid points, overrides, merged models, dropped points, duplicates)."""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path

import pytest
from campaign_corpus import CORPUS

from pytest_llenergy.config import CampaignError, load_plan
from pytest_llenergy.config.errors import CampaignError as Error
from pytest_llenergy.config.loading import MAX_FILE_BYTES, load_campaign, parse_yaml


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def plan_of(tmp_path: Path, text: str):
    return load_plan(write(tmp_path, text))


@pytest.mark.parametrize("case,text,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_campaign_names_file_and_field(tmp_path: Path, case: str, text: str, expected: str):
    path = write(tmp_path, text)
    with pytest.raises(CampaignError) as info:
        load_plan(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and fnmatch.fnmatch(message, expected), message
    assert len(message.splitlines()) < 12


def test_file_problems(tmp_path: Path):
    with pytest.raises(Error, match=r"nope\.yaml: file not found$"):
        load_campaign(tmp_path / "nope.yaml")
    with pytest.raises(Error, match=r": not a regular file$"):
        load_campaign(tmp_path)
    with pytest.raises(Error, match=r": not UTF-8 text \(byte 9: b'\\xe9'\)$"):
        load_campaign(write(tmp_path, b"name: caf\xe9\ndefaults: {model: gpt2}\n"))
    big = write(tmp_path, b"name: x\n#" + b"a" * MAX_FILE_BYTES)
    with pytest.raises(Error, match=r": file is 2\.1 MB; campaign files are limited to 2 MB$"):
        load_campaign(big)
    limit = write(tmp_path, b"name: x\ndefaults: {model: gpt2}\n#".ljust(MAX_FILE_BYTES, b"a"))
    assert load_campaign(limit)[0].name == "x"  # exactly at the limit: read


def test_yaml_errors_give_line_and_column(tmp_path: Path):
    with pytest.raises(Error) as info:
        load_campaign(write(tmp_path, "name: x\ndefaults: {model: gpt2\n"))
    assert str(info.value).startswith(f"{tmp_path / 'campaign.yaml'}: YAML error at line 3, column 1: ")
    with pytest.raises(Error, match=r"YAML error at line 2, column 1: found duplicate key|duplicate key 'name'"):
        load_campaign(write(tmp_path, "name: x\nname: y\n"))
    with pytest.raises(Error, match=r"top level must be a mapping of keys, not a list$"):
        load_campaign(write(tmp_path, "- 1\n"))
    with pytest.raises(Error, match=r"top level must be a mapping of keys, not a str$"):
        load_campaign(write(tmp_path, "just text\n"))


def test_yaml_on_key_is_a_string_and_duplicates_are_per_mapping(tmp_path: Path):
    config, digest = load_campaign(write(tmp_path, "name: x\ndefaults: {model: {name: gpt2}}\n"
                                                   "experiments: [{name: a}, {name: b}]\n"))
    assert [e["name"] for e in config.experiments] == ["a", "b"]  # the same key in two mappings is fine
    assert len(digest) == 12 and digest == load_campaign(tmp_path / "campaign.yaml")[1]
    text = (tmp_path / "campaign.yaml").read_text()
    assert digest == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert parse_yaml("on: 1\nyes: 2\n", "s") == {"on": 1, "yes": 2}  # YAML 1.1 booleans as keys stay names
    with pytest.raises(Error, match="duplicate key 'on'"):
        parse_yaml("on: 1\n'on': 2\n", "s")


def test_a_grid_expands_to_sorted_unique_experiments(tmp_path: Path):
    plan = plan_of(tmp_path, """
name: g
defaults: {model: {name: gpt2, weights: random}, workload: {num_prompts: 4}}
grid:
  backends: [transformers, vllm]
  models: [gpt2, {name: sshleifer/tiny-gpt2}]
  shared: {workload.batch_size: [1, 2], precision: float16}
  backend_overrides: {vllm: {max_num_seqs: [4, 8]}}
""")
    ids = [e.id for e in plan.experiments]
    assert ids == sorted(ids) and len(ids) == 2 * 2 * 1 + 2 * 2 * 2  # transformers: 2 models x 2 sizes; vllm: x 2 seqs
    configs = [e.config for e in plan.experiments]
    assert {c.backend for c in configs} == {"transformers", "vllm"}
    assert {c.model.name for c in configs} == {"gpt2", "sshleifer/tiny-gpt2"}
    assert all(c.model.weights == "random" for c in configs)  # a grid model is merged over defaults.model
    assert all(c.workload.num_prompts == 4 and c.precision == "float16" for c in configs)
    assert {c.workload.batch_size for c in configs} == {1, 2}
    assert sorted({c.vllm.max_num_seqs for c in configs if c.backend == "vllm"}) == [4, 8]
    assert all(c.vllm is None for c in configs if c.backend == "transformers")
    assert plan.dropped == [] and plan.duplicates == 0 and plan.file_hash and plan.source.endswith("campaign.yaml")
    assert plan.base_dir == str(tmp_path.resolve())


def test_invalid_grid_points_are_dropped_with_their_reason(tmp_path: Path):
    plan = plan_of(tmp_path, """
name: g
defaults: {model: gpt2}
grid: {shared: {workload.streaming: [true, false], workload.batch_size: [1, 4, 8]}}
""")
    assert len(plan.experiments) == 4 and len(plan.dropped) == 2
    label, reason = plan.dropped[0]
    assert label.startswith("backend=transformers, model=gpt2, workload.batch_size=4, workload.streaming=True")
    assert "streaming" in reason and "batch_size: 1" in reason
    summary = plan.dropped_summary()
    assert summary == [f"2 dropped: {reason} (first: {label})"]


def test_every_point_dropped_is_an_error(tmp_path: Path):
    with pytest.raises(Error, match=r"every experiment was dropped: .*streaming.*"):
        plan_of(tmp_path, "name: g\ndefaults: {model: gpt2, workload: {streaming: true}}\n"
                          "grid: {shared: {workload.batch_size: [2, 4]}}\n")


def test_identical_experiments_count_as_duplicates(tmp_path: Path):
    plan = plan_of(tmp_path, "name: g\ndefaults: {model: gpt2}\n"
                             "experiments: [{precision: float16}, {precision: float16}, {precision: float32}]\n")
    assert len(plan.experiments) == 2 and plan.duplicates == 1


def test_explicit_experiments_merge_over_their_backends_defaults(tmp_path: Path):
    plan = plan_of(tmp_path, """
name: e
defaults: {model: gpt2, precision: float16, transformers: {attn_implementation: eager}, vllm: {max_num_seqs: 3}}
experiments:
  - {name: t}
  - {name: v, backend: vllm, workload: {batch_size: 2}}
""")
    by_name = {e.config.name: e.config for e in plan.experiments}
    assert by_name["t"].transformers.attn_implementation == "eager" and by_name["t"].vllm is None
    assert by_name["v"].vllm.max_num_seqs == 3 and by_name["v"].transformers is None
    assert by_name["v"].precision == "float16" and by_name["v"].workload.batch_size == 2


def test_defaults_alone_are_one_experiment(tmp_path: Path):
    plan = plan_of(tmp_path, "name: d\ndefaults: {model: gpt2, backend: vllm}\n")
    assert [e.config.backend for e in plan.experiments] == ["vllm"]
    with pytest.raises(Error, match=r"defaults\.workload\.batch_size: Input should be greater than or equal to 1"):
        plan_of(tmp_path, "name: d\ndefaults: {model: gpt2, workload: {batch_size: 0}}\n")


def test_many_problems_are_listed_together(tmp_path: Path):
    with pytest.raises(Error) as info:
        plan_of(tmp_path, "name: d\ndefaults: {model: gpt2}\nexperiments:\n"
                + "".join(f"  - {{precision: fp{i}}}\n" for i in range(10)))
    lines = str(info.value).splitlines()
    assert lines[0].endswith(": 10 problems") and lines[1].startswith("  experiments[0].precision: ")
    assert lines[-1] == "  ... and 2 more" and len(lines) == 10


def test_grid_path_problems(tmp_path: Path):
    with pytest.raises(Error) as info:
        plan_of(tmp_path, "name: g\ndefaults: {model: gpt2}\n"
                          "grid: {shared: {model.name: [a], name: [b], precison: [c]}, backends: [onnx]}\n")
    text = str(info.value)
    for line in ("grid.shared.model.name: set backends and models with grid.backends and grid.models",
                 "grid.shared.name: set backends and models", "grid.shared.precison: unknown key",
                 "grid.backends[0]: unknown backend 'onnx' (known: tensorrt, transformers, vllm)"):
        assert line in text
    with pytest.raises(Error, match="defaults.vllm.max_num_seqs"):
        plan_of(tmp_path, "name: g\ndefaults: {model: gpt2, vllm: {max_num_seqs: 0}}\n")


def test_the_defaults_backend_is_the_grids_and_the_experiments(tmp_path: Path):
    plan = plan_of(tmp_path, "name: g\ndefaults: {model: gpt2, backend: vllm, vllm: {max_num_seqs: 3}}\n"
                             "grid: {backend_overrides: {vllm: {gpu_memory_utilization: [0.5, 0.6]}}}\n")
    assert [e.config.backend for e in plan.experiments] == ["vllm", "vllm"]
    assert sorted(e.config.vllm.gpu_memory_utilization for e in plan.experiments) == [0.5, 0.6]
    assert {e.config.vllm.max_num_seqs for e in plan.experiments} == {3}  # the backend's defaults section kept
    explicit = plan_of(tmp_path, "name: e\ndefaults: {model: gpt2, backend: vllm, vllm: {max_num_seqs: 3}}\n"
                                 "experiments: [{precision: float16}]\n")
    assert explicit.experiments[0].config.vllm.max_num_seqs == 3 and explicit.campaign.name == "e"


def test_every_unknown_override_backend_is_reported(tmp_path: Path):
    with pytest.raises(Error) as info:
        plan_of(tmp_path, "name: g\ndefaults: {model: gpt2}\ngrid: {backend_overrides: {jax: {x: [1]}, onnx: {y: [2]}}}\n")
    assert "grid.backend_overrides.jax: unknown backend" in str(info.value)
    assert "grid.backend_overrides.onnx: unknown backend" in str(info.value)


def test_no_model_and_all_dropped_messages(tmp_path: Path):
    path = write(tmp_path, "name: x\nexperiments: [{precision: float16}]\n")
    with pytest.raises(Error) as info:
        load_plan(path)
    assert str(info.value) == f"{path}: no model: set defaults.model, grid.models or a model per experiment"
    path = write(tmp_path, "name: g\ndefaults: {model: gpt2}\n"
                           "grid: {shared: {precision: [float32]}, backends: [transformers, tensorrt], "
                           "backend_overrides: {transformers: {attn_implementation: [fast]}}}\n")
    with pytest.raises(Error) as info:
        load_plan(path)
    message = str(info.value)
    assert message.startswith(f"{path}: every experiment was dropped: ") and message.count("; ") == 1


def test_duplicates_are_counted_each(tmp_path: Path):
    plan = plan_of(tmp_path, "name: g\ndefaults: {model: gpt2}\n"
                             "experiments: [{precision: float16}, {precision: float16}, {precision: float16}]\n")
    assert len(plan.experiments) == 1 and plan.duplicates == 2


def test_campaign_budget_rules_keep_tolerance_and_adjusted(tmp_path: Path):
    plan = plan_of(tmp_path, "name: b\ndefaults: {model: gpt2}\n"
                             "budgets: [{limits: {energy: 2 kJ}, tolerance: 10%, adjusted: false}]\n")
    budget = plan.campaign.budgets[0].budget()
    assert (budget.limits, budget.tolerance, budget.adjusted, budget.source) == ({"energy": 2000.0}, 0.1, False,
                                                                                 "campaign")


def test_union_members_are_left_out_of_field_paths(tmp_path: Path):
    path = write(tmp_path, 'name: x\ndefaults: {model: gpt2, workload: {prompts: {dataset: ""}}}\n')
    with pytest.raises(Error) as info:
        load_plan(path)
    assert str(info.value).splitlines()[1:] == [
        "  defaults.workload.prompts: Input should be 'synthetic' or 'builtin' (got {'dataset': ''})",
        "  defaults.workload.prompts.file: required field is missing",
        "  defaults.workload.prompts.dataset: unknown key",
        "  defaults.workload.prompts.dataset: dataset cannot be empty"]


def test_nine_problems_show_eight_and_one_more(tmp_path: Path):
    with pytest.raises(Error) as info:
        plan_of(tmp_path, "name: d\ndefaults: {model: gpt2}\nexperiments:\n"
                + "".join(f"  - {{precision: fp{i}}}\n" for i in range(9)))
    lines = str(info.value).splitlines()
    assert all(line.startswith(f"  experiments[{i}].precision: ") for i, line in enumerate(lines[1:9]))
    assert lines[9] == "  ... and 1 more" and len(lines) == 10


def test_a_model_level_reason_has_no_empty_path(tmp_path: Path):
    plan = plan_of(tmp_path, "name: g\ndefaults: {model: gpt2}\ngrid: {backends: [transformers, tensorrt], "
                             "shared: {precision: [float32, float16]}}\n")
    assert plan.dropped == [("backend=tensorrt, model=gpt2, precision=float32",
                             "TensorRT-LLM does not run float32: use float16 or bfloat16")]


def test_file_errors_name_the_file(tmp_path: Path):
    with pytest.raises(Error) as info:
        load_campaign(tmp_path)
    assert str(info.value) == f"{tmp_path}: not a regular file"
    big = write(tmp_path, b"#".ljust(2_250_001, b"a"))  # 2.250001 MB: rounds up
    with pytest.raises(Error) as info:
        load_campaign(big)
    assert str(info.value) == f"{big}: file is 2.3 MB; campaign files are limited to 2 MB"
    with pytest.raises(Error) as info:
        parse_yaml("name: x\ndefaults: {a: 1, a: 2}\n", "s")
    assert str(info.value) == "s: YAML error at line 2, column 18: duplicate key 'a'"


def test_the_node_limit_is_exact():
    from pytest_llenergy.config.loading import MAX_NODES, _check_size

    _check_size({"a": [0] * (MAX_NODES - 2)}, "s")  # the mapping, the list and its items: MAX_NODES
    with pytest.raises(Error, match=f"s: more than {MAX_NODES} values once aliases are expanded"):
        _check_size({"a": [0] * (MAX_NODES - 1)}, "s")
