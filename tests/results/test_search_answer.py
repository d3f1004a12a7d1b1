"""A search's answer from the files (results/search_data.py, search_report.py): figures, pick, saving, fronts."""

from __future__ import annotations

import json

import pytest

from pytest_llenergy.config.search import SearchConfig
from pytest_llenergy.results.phase_schema import ServingStats
from pytest_llenergy.results.schema import ItemTiming, LatencyStats
from pytest_llenergy.results.search_data import (
    SearchSpec,
    constraint_value,
    gpu_seconds,
    objective_value,
    read_spec,
    steady_gpu_seconds,
    write_spec,
)
from pytest_llenergy.results.search_report import search_answer, search_lines

from .factory import make_result, write_run


def test_figures_a_search_reads_from_a_result():
    result = make_result(energy_j=100.0, adjusted_j=60.0)
    result.latency = LatencyStats(mode="per_batch", batch_latency_s_mean=0.8, batch_latency_s_p95=1.2,
                                  ttft_ms_p95=40.0)
    result.serving = ServingStats(process="poisson", requests=20, ttft_ms={"p99": 55.0}, e2e_ms={"p90": 900.0})
    result.timing = ItemTiming(wall_s=10.0, load_s=3.0, warmup_s=2.0)
    row: dict = {"output_tokens_per_s": 500.0, "peak_memory_mb": 1024.0}
    assert constraint_value(result, "batch_latency_p95_s", row) == 1.2
    assert constraint_value(result, "ttft_p99_ms", row) == 55.0  # the serving figure
    assert constraint_value(result, "ttft_p95_ms", row) == 40.0  # not in the serving table: the latency one
    assert constraint_value(result, "e2e_p90_ms", row) == 900.0 and constraint_value(result, "itl_p50_ms", row) is None
    assert constraint_value(result, "output_tokens_per_s", row) == 500.0
    assert objective_value(result, "adjusted_energy_per_request") == 60.0 / 20  # per serving request
    assert objective_value(result, "energy_per_output_token") == result.energy.energy_per_output_token_j
    assert gpu_seconds(result) == 10.0 and steady_gpu_seconds(result) == 5.0  # one GPU; load + warmup left out


def _run(tmp_path, values: dict[str, list[float]], search: SearchConfig, reference: str):
    run = write_run(tmp_path, values)
    write_spec(run.path, SearchSpec(search, sorted(values), reference, 6))
    return run


def test_answer_names_the_pick_its_saving_the_drops_and_the_gpu_time(tmp_path):
    values = {"ref": [100.0, 101.0, 99.0], "best": [60.0, 60.5, 59.8, 60.2, 60.1, 59.9], "bad": [150.0, 151.0]}
    run = _run(tmp_path, values, SearchConfig(objective="energy_per_output_token", stop={"precision": 0.01}), "ref")
    assert read_spec(run.path).reference == "ref"
    answer = search_answer([run.path])
    assert answer["pick"] == "best" and answer["pick_confirmed"]
    saving = answer["saving_vs_reference"]
    assert abs(saving["saving"] - 0.4) < 0.005 and 0.35 < saving["ci_low"] < saving["saving"] < saving["ci_high"] < 0.45
    drops = {d["config"]: d for d in answer["dropped"]}
    assert drops["bad"]["round"] == 2 and drops["bad"]["kind"] == "worse" and drops["ref"]["round"] <= 3
    assert answer["front_throughput"] and "best" in answer["front_latency"]
    gpu = answer["gpu_s"]
    assert gpu["spent"] > 0 and gpu["exhaustive_at_pick_rounds"] > gpu["spent"]
    lines = search_lines(answer)
    assert lines[0].startswith("search: pick best: energy_per_output_token ") and "meets every constraint" in lines[0]
    assert answer["stopping_adjusted"] == (answer["stopped"] is not None and "CI is within" in answer["stopped"])
    assert lines[1].endswith("(95% CI, stopping-adjusted)" if answer["stopping_adjusted"] else "(95% CI)")
    assert any(line.startswith("search: dropped bad after round 2: worse than best by +") for line in lines)


def test_no_spec_no_answer_and_lem_report_rebuilds_it(tmp_path):
    from pytest_llenergy.results.report import build_outputs

    plain = write_run(tmp_path / "plain", {"a": [1.0, 1.1]})
    assert search_answer([plain.path]) is None
    run = _run(tmp_path / "s", {"a": [10.0, 10.1, 9.9], "b": [20.0, 20.2, 19.8]},
               SearchConfig(objective="energy_per_output_token"), "b")
    summary = build_outputs(run.path, plots=True)
    assert summary.search is not None and summary.search["pick"] == "a"
    data = json.loads((run.path / "summary.json").read_text())
    assert data["search"]["reference"] == "b" and (run.path / "plots" / "search_pareto.png").is_file()
    assert "Search: the energy-optimal configuration" in (run.path / "report.html").read_text()


def test_survivors_left_open_by_a_stop_are_named_with_their_figures():
    """A budget stop can leave a survivor whose mean is lower than the pick's (H200 search: 0.0198 vs
    0.0253 J/token, its latency limit undecided): the terminal says so instead of implying the pick won."""
    block = {"n": 2, "mean": 0.02, "ci_low": 0.014, "ci_high": 0.027}
    answer = {"pick": "a", "confidence": 0.95, "pick_confirmed": True, "objective": "adjusted_energy_per_output_token",
              "saving_vs_reference": None, "rounds": 2, "stopped": "GPU budget", "survivors": ["b", "a"],
              "configs": {"a": {"objective": block, "latency": block}, "b": {"objective": block, "latency": block}},
              "gpu_s": {"spent": 10.0, "exhaustive_same_precision": 20.0, "share": 0.5, "exhaustive_at_pick_rounds": 10.0},
              "dropped": [], "front_latency": [], "front_throughput": [], "latency_metric": "l", "throughput_metric": "t"}
    lines = search_lines(answer)
    assert "search: still undecided when the race stopped (1): more rounds would settle them" in lines
    assert any(line.startswith("search:   b: adjusted_energy_per_output_token 0.02 [0.014, 0.027] (n=2)") for line in lines)
    answer["survivors"] = ["a"]
    assert not any("undecided" in line for line in search_lines(answer))


def test_the_saving_is_stopping_adjusted_only_when_the_precision_rule_ended_the_race(tmp_path):
    from pytest_llenergy.results.search_report import saving_interval

    values = {"ref": [100.0, 103.0, 98.0], "best": [60.0, 61.5, 59.0]}
    for precision, stop_kind_adjusted in ((1e-6, False), (0.2, True)):
        run = write_run(tmp_path / str(precision), values)
        write_spec(run.path, SearchSpec(SearchConfig(objective="energy_per_output_token", stop={"precision": precision}),
                                        sorted(values), "ref", 3))
        answer = search_answer([run.path])
        assert answer["stopping_adjusted"] is stop_kind_adjusted, answer["stopped"]
        level = 0.025 if stop_kind_adjusted else 0.05
        pick, ref = (answer["configs"][c]["objective"] for c in ("best", "ref"))
        expected = saving_interval(values["best"][:pick["n"]], values["ref"][:ref["n"]], level)
        assert answer["saving_vs_reference"] == pytest.approx(expected, rel=1e-12)
