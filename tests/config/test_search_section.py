"""The campaign's ``search:`` section (config/search.py): limits, stop rule, reference, and ``lem config show``'s lines."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pytest_llenergy.config import CampaignError, load_plan
from pytest_llenergy.config.search import (
    SearchConfig,
    SearchConstraint,
    SearchStop,
    campaign_problems,
    describe_search,
    find_reference,
    reference_to_add,
)

GRID = "grid: {shared: {workload.batch_size: [1, 2]}}\n"


def _plan(tmp_path, search: str, cycles: str = "4", defaults: str = "{model: {name: tiny-llama, weights: random}}",
          extra: str = GRID):
    path = tmp_path / "c.yaml"
    path.write_text(f"name: x\ncycles: {cycles}\ndefaults: {defaults}\n{extra}search: {search}\n")
    return load_plan(path)


def test_a_constraint_states_its_limit_and_direction():
    ceiling = SearchConstraint(metric="ttft_p99_ms", max=250)
    floor = SearchConstraint(metric="output_tokens_per_s", min=1500.5)
    assert (str(ceiling), ceiling.limit, ceiling.upper) == ("ttft_p99_ms <= 250", 250, True)
    assert (str(floor), floor.limit, floor.upper) == ("output_tokens_per_s >= 1500.5", 1500.5, False)
    with pytest.raises(ValidationError, match="give exactly one of max or min"):
        SearchConstraint(metric="ttft_p99_ms")
    with pytest.raises(ValidationError, match="greater than 0"):
        SearchConstraint(metric="ttft_p99_ms", max=0)


def test_the_gpu_budget_takes_durations_and_stays_unset_by_default():
    assert SearchStop(gpu_budget_s="8min").gpu_budget_s == 480.0
    assert SearchStop(gpu_budget_s=90).gpu_budget_s == 90.0
    assert SearchStop().gpu_budget_s is None and SearchStop(gpu_budget_s=None).gpu_budget_s is None
    with pytest.raises(ValidationError):
        SearchStop(gpu_budget_s="0s")


def test_the_defaults_of_a_bare_search_section():
    search = SearchConfig()
    assert (search.objective, search.min_rounds, search.confidence, search.constraints) == (
        "adjusted_energy_per_output_token", 2, 0.95, [])
    assert (search.stop.max_survivors, search.stop.precision) == (1, 0.02)
    assert search.alpha == pytest.approx(0.05)


@pytest.mark.parametrize("reference", ["", "   "])
def test_an_empty_reference_is_refused(reference):
    with pytest.raises(ValidationError, match="an empty reference; leave it out for the campaign's defaults"):
        SearchConfig(reference=reference)


def test_reference_paths_are_checked_in_the_backend_section_and_the_experiment():
    SearchConfig(reference={"transformers.attn_implementation": "sdpa", "workload.batch_size": 8})
    with pytest.raises(ValidationError, match="'transformers.attn'"):
        SearchConfig(reference={"transformers.attn": "sdpa"})
    with pytest.raises(ValidationError, match="'workload.batchsize'"):
        SearchConfig(reference={"workload.batchsize": 8})


def test_cycles_equal_to_min_rounds_is_enough(tmp_path):
    plan = _plan(tmp_path, "{min_rounds: 3}", cycles="3")
    assert campaign_problems(plan.campaign) == []


def test_campaign_problems_list_every_reason_at_once(tmp_path):
    with pytest.raises(CampaignError) as info:
        _plan(tmp_path, "{min_rounds: 5}", cycles="4", extra=GRID + "order: grouped\n")
    text = str(info.value)
    assert "cycles: 4 is below search.min_rounds (5); cycles is the most rounds a search runs" in text
    assert "order: a search runs the survivors round by round: use interleaved or shuffled" in text


def test_the_reference_is_found_by_id_name_or_unique_prefix(tmp_path):
    plan = _plan(tmp_path, "{}", extra="experiments: [{name: small, workload: {batch_size: 1}}, "
                 "{name: large, workload: {batch_size: 16}}]\n")
    ids = {e.config.name: e.id for e in plan.experiments}
    campaign = plan.campaign
    by_id = campaign.model_copy(update={"search": SearchConfig(reference=ids["large"])})
    assert find_reference(by_id, plan.experiments)[0][0] == ids["large"]
    by_name = campaign.model_copy(update={"search": SearchConfig(reference="large")})
    assert find_reference(by_name, plan.experiments)[0][0] == ids["large"]
    by_prefix = campaign.model_copy(update={"search": SearchConfig(reference=ids["large"][:-3])})
    large = next(e for e in plan.experiments if e.id == ids["large"])
    assert find_reference(by_prefix, plan.experiments) == ((ids["large"], large.config), [])
    grid = _plan(tmp_path, "{}")  # ids transformers-tiny-llama-bs1-..., -bs2-...
    several = grid.campaign.model_copy(update={"search": SearchConfig(reference="transformers-tiny-llama")})
    assert find_reference(several, grid.experiments) == (
        None, ["search.reference: 'transformers-tiny-llama' matches several experiments"])


def test_a_reference_in_the_grid_is_not_added_and_one_outside_is(tmp_path):
    inside = _plan(tmp_path, "{reference: {workload.batch_size: 2}}")
    assert reference_to_add(inside.campaign, inside.experiments) == (None, [])
    assert len(inside.experiments) == 2
    outside = _plan(tmp_path, "{reference: {workload.batch_size: 8}}")
    assert [e.config.workload.batch_size for e in outside.experiments] == [1, 2, 8]


def test_a_reference_the_defaults_cannot_build_names_its_field(tmp_path):
    with pytest.raises(CampaignError, match=r"search.reference: .*precision"):
        _plan(tmp_path, "{reference: {precision: float7}}")


def test_config_show_lines_for_a_search(tmp_path):
    plan = _plan(tmp_path, "{objective: energy_per_token, confidence: 0.9, min_rounds: 3, constraints: "
                 "[{metric: peak_memory_mb, max: 8000}, {metric: tokens_per_s, min: 100}], "
                 "stop: {max_survivors: 2, precision: 0.05, gpu_budget_s: 10min}, reference: {workload.batch_size: 2}}",
                 cycles="5")
    [_, bs2] = plan.experiments
    assert describe_search(plan.campaign, plan.experiments) == [
        "search: minimise energy_per_token; constraints: peak_memory_mb <= 8000; tokens_per_s >= 100",
        "search: 2 configurations, 3 to 5 rounds (at most 10 items); drops at 90% confidence per round",
        "search: stop at 2 survivor(s) or survivors within ±5.0%, pick's CI ±5.0%, GPU budget 600 s",
        f"search: reference {bs2.id}",
    ]
    bare = _plan(tmp_path, "{}")
    lines = describe_search(bare.campaign, bare.experiments)
    assert lines[0] == "search: minimise adjusted_energy_per_output_token; constraints: none"
    assert lines[2] == "search: stop at 1 survivor(s) or survivors within ±2.0%, pick's CI ±2.0%"
    assert lines[3].endswith(" (the campaign's defaults)")
    no_search = bare.campaign.model_copy(update={"search": None})
    assert describe_search(no_search, bare.experiments) == [] and campaign_problems(no_search) == []
    assert reference_to_add(no_search, bare.experiments) == (None, [])


def test_a_reference_may_switch_the_backend_and_never_edits_the_defaults(tmp_path):
    defaults = "{model: {name: tiny-llama, weights: random}, workload: {batch_size: 4}, transformers: {attn_implementation: eager}}"
    plan = _plan(tmp_path, "{}", defaults=defaults)
    campaign = plan.campaign
    before = campaign.model_dump()
    vllm = campaign.model_copy(update={"search": SearchConfig(reference={"backend": "vllm", "workload.batch_size": 2})})
    (_, config), problems = find_reference(vllm, plan.experiments)
    assert problems == [] and config.backend == "vllm" and config.workload.batch_size == 2
    assert config.transformers is None  # the other backend's section of the defaults is left out
    own = campaign.model_copy(update={"search": SearchConfig(reference={"workload.batch_size": 2})})
    (_, config), _ = find_reference(own, plan.experiments)
    assert config.backend == "transformers" and config.transformers.attn_implementation == "eager"
    assert campaign.model_dump() == before  # the overrides went into a copy


def test_adaptive_cycles_cannot_race_and_an_unresolved_reference_shows_as_a_question_mark(tmp_path):
    plan = _plan(tmp_path, "{}")
    adaptive = plan.campaign.model_copy(update={"cycles": {"min": 3, "max": 6}})
    assert campaign_problems(adaptive) == [
        "cycles: a search sets the most rounds with cycles: N; adaptive cycles do not apply (the race decides when "
        "each configuration stops)"]
    unresolved = plan.campaign.model_copy(update={"search": SearchConfig(reference="no-such-experiment")})
    assert describe_search(unresolved, plan.experiments)[3] == "search: reference ?"


def test_problems_are_kept_even_when_the_reference_is_found_outside_the_grid(tmp_path):
    plan = _plan(tmp_path, "{reference: {workload.batch_size: 8}}")
    short = plan.campaign.model_copy(update={"cycles": 1})
    experiments = [e for e in plan.experiments if e.config.workload.batch_size != 8]
    assert reference_to_add(short, experiments) == (None, ["cycles: 1 is below search.min_rounds (2); cycles is the "
                                                           "most rounds a search runs"])


def test_defaults_that_are_no_experiment_on_their_own_name_the_defaults(tmp_path):
    """Models only in the grid: the defaults alone name no model, so they cannot be the reference (this added a
    model-less 'transformers-nomodel-...' configuration to the race, which could only fail)."""
    grid = "grid: {models: [{name: tiny-llama, weights: random}, {name: tiny-gpt2, weights: random}]}\n"
    with pytest.raises(CampaignError, match=r"search.reference \(the campaign's defaults\): names no model; give "
                                            r"defaults a model, or set search.reference to an experiment's id or name"):
        _plan(tmp_path, "{}", defaults="{workload: {batch_size: 1}}", extra=grid)
    plan = _plan(tmp_path, "{reference: transformers-tiny-gpt2}", defaults="{workload: {batch_size: 1}}", extra=grid)
    assert [e.config.model.name for e in plan.experiments] == ["tiny-gpt2", "tiny-llama"]
    with pytest.raises(CampaignError, match=r"search.reference: names no model"):
        _plan(tmp_path, "{reference: {workload.batch_size: 2}}", defaults="{workload: {batch_size: 1}}", extra=grid)
