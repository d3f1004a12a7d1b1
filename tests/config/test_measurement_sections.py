"""The measurement, phases, carbon, dispatch and timeline settings: what each validator accepts and refuses,
and the sharding split (specs, model sizes, cost balance)."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from pytest_llenergy.config import ExperimentConfig
from pytest_llenergy.config.carbon import CarbonConfig
from pytest_llenergy.config.dispatch import DispatchConfig
from pytest_llenergy.config.measurement import MeasurementConfig, WarmupSettings
from pytest_llenergy.config.phases import ArrivalSettings
from pytest_llenergy.config.plan import Experiment
from pytest_llenergy.config.sharding import (
    ShardSpec,
    ShardSpecError,
    assign,
    model_scale,
    predicted_cost,
    select,
)
from pytest_llenergy.config.timeline import PhaseTimeline, RequestTiming


def refused(model, match: str, **values) -> None:
    with pytest.raises(ValidationError, match=match):
        model.model_validate(values)


class TestWarmup:
    def test_yaml_off_is_the_off_mode(self):
        assert WarmupSettings.model_validate({"mode": False}).mode == "off"
        assert WarmupSettings.model_validate({"mode": "fixed"}).mode == "fixed"
        refused(WarmupSettings, "Input should be 'convergence', 'fixed' or 'off'", mode=True)

    def test_iteration_bounds(self):
        refused(WarmupSettings, "max_iterations must be >= min_iterations", min_iterations=6, max_iterations=5)
        assert WarmupSettings(min_iterations=5, max_iterations=5).max_iterations == 5
        refused(WarmupSettings, "max_iterations must be >= window in convergence mode", window=8, max_iterations=7,
                min_iterations=1)
        assert WarmupSettings(window=7, max_iterations=7, min_iterations=1).window == 7
        assert WarmupSettings(mode="fixed", window=8, max_iterations=7, min_iterations=1).mode == "fixed"


class TestEnergySource:
    @pytest.mark.parametrize("source", ["auto", "nvml", "rapl", "estimate", "replay", "replay:/tmp/trace.csv",
                                        "replay:C:/x.csv", "replay?scale=1.1", "replay:t.csv?speed=2"])
    def test_known_sources(self, source: str):
        assert MeasurementConfig(energy_source=source).energy_source == source

    @pytest.mark.parametrize("source", ["wattmeter", "nvml:0", "rapl?x=1", "", "NVML", "replay2"])
    def test_unknown_sources(self, source: str):
        refused(MeasurementConfig, rf"unknown energy source {re.escape(repr(source))} \(auto, nvml, rapl, estimate, replay, replay:PATH\)",
                energy_source=source)


class TestArrivals:
    def test_poisson_needs_a_rate_and_no_trace(self):
        assert ArrivalSettings(process="poisson", rate_rps=2.0).rate_rps == 2.0
        refused(ArrivalSettings, "process poisson needs rate_rps", process="poisson")
        refused(ArrivalSettings, "trace applies to process trace only", process="poisson", rate_rps=1.0, trace="t.txt")

    def test_trace_needs_a_file(self):
        assert ArrivalSettings(process="trace", trace="t.txt").trace == "t.txt"
        assert ArrivalSettings(process="trace", trace="t.txt", rate_rps=3.0).rate_rps == 3.0
        refused(ArrivalSettings, "process trace needs trace: a file of arrival offsets", process="trace")
        refused(ArrivalSettings, "process trace needs trace", process="trace", trace="")


def test_carbon_is_enabled_by_an_intensity_or_a_price():
    assert not CarbonConfig().enabled
    assert CarbonConfig(grid_intensity_g_per_kwh=400.0).enabled
    assert CarbonConfig(price_per_kwh=0.0).enabled  # a price of 0 is still a price


class TestContainerPaths:
    @pytest.mark.parametrize(("given", "kept"), [("/work", "/work"), ("/work/", "/work"), ("/", "/"), ("//", "/"),
                                                 ("/a/b..c", "/a/b..c")])
    def test_absolute_paths_are_kept_without_a_trailing_slash(self, given: str, kept: str):
        assert DispatchConfig(project_dir=given).project_dir == kept
        assert DispatchConfig(results_dir=given).results_dir == kept

    @pytest.mark.parametrize("path", ["work", "./work", "/work/../etc", "/..", "../x"])
    def test_relative_or_escaping_paths_are_refused(self, path: str):
        refused(DispatchConfig, "must be an absolute path inside the container, without '..'", project_dir=path)
        refused(DispatchConfig, "must be an absolute path inside the container", results_dir=path)


def test_request_timing_and_timeline_boundaries():
    a = RequestTiming("a", start_s=1.0, first_token_s=1.25, end_s=3.0, input_tokens=8, output_tokens=4)
    b = RequestTiming("b", start_s=0.5, first_token_s=2.0, end_s=2.5, input_tokens=8, output_tokens=4)
    assert (a.prefill_s, a.decode_s) == (0.25, 1.75)
    assert PhaseTimeline("perf_counter", "x").boundaries() is None
    assert PhaseTimeline("perf_counter", "x", [a, b]).boundaries() == (0.5, 3.0)


def experiment(eid: str, model: str = "gpt2", prompts: int = 8, input_tokens: int = 32, output_tokens: int = 16) -> Experiment:
    config = ExperimentConfig.model_validate({"model": model, "workload": {
        "num_prompts": prompts, "input_tokens": input_tokens, "output_tokens": output_tokens}})
    return Experiment(eid, config)


class TestSharding:
    @pytest.mark.parametrize(("text", "spec"), [("1/1", (1, 1)), ("2/8", (2, 8)), ("8/8", (8, 8)), (" 3/4", (3, 4))])
    def test_specs(self, text: str, spec: tuple[int, int]):
        parsed = ShardSpec.parse(text)
        assert (parsed.index, parsed.count) == spec and str(parsed) == f"{spec[0]}/{spec[1]}"

    @pytest.mark.parametrize(("text", "message"), [("0/4", "need 1 <= K <= N, got '0/4'"),
                                                   ("5/4", "need 1 <= K <= N, got '5/4'"),
                                                   ("2", "expected K/N such as 2/8, got '2'"),
                                                   ("1/2/3", "expected K/N such as 2/8, got '1/2/3'"),
                                                   ("a/b", "expected K/N such as 2/8, got 'a/b'")])
    def test_bad_specs(self, text: str, message: str):
        with pytest.raises(ShardSpecError) as info:
            ShardSpec.parse(text)
        assert str(info.value) == message and isinstance(info.value, ValueError)

    @pytest.mark.parametrize(("name", "scale"), [("meta-llama/Llama-3.1-8B", 8.0), ("smollm2-135m", 0.135),
                                                 ("qwen2.5-0.5b-instruct", 0.5), ("gpt2", 1.0), ("x-7b-to-70B", 70.0),
                                                 ("mamba-130M", 0.13), ("model-3bit", 1.0), ("llama 13 b", 13.0)])
    def test_model_scale(self, name: str, scale: float):
        assert model_scale(name) == pytest.approx(scale)

    def test_predicted_cost_is_tokens_times_scale_times_cycles(self):
        e = experiment("e", model="org/x-2b", prompts=4, input_tokens=10, output_tokens=30)
        assert predicted_cost(e, 3) == 3 * 4 * 40 * 2.0

    def test_longest_first_to_the_least_loaded_shard_in_campaign_order(self):
        exps = [experiment("a", prompts=1), experiment("b", prompts=5), experiment("c", prompts=4),
                experiment("d", prompts=3), experiment("e", prompts=3)]
        shards = assign(exps, 2)
        # b(5) -> 0, c(4) -> 1, d(3) -> 1 (4 < 5), e(3) -> 0 (5 < 7), a(1) -> 0 (8 vs 7: 1)
        assert [[x.id for x in s] for s in shards] == [["b", "e"], ["a", "c", "d"]]
        assert [x.id for x in select(exps, ShardSpec(2, 2))] == ["a", "c", "d"]
        ties = assign([experiment("x"), experiment("y")], 3)
        assert [[x.id for x in s] for s in ties] == [["x"], ["y"], []]  # equal cost: by id, ties to the lower shard
        assert assign(list(reversed(exps)), 2, cycles=5) == [sorted(s, key=lambda x: -ord(x.id)) for s in shards]
