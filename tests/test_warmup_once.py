"""Warmup paid once per loaded session and workload shape, on a probe of the real shapes (issue 13)."""

from __future__ import annotations

import json

import pytest
from campaigns import results, write_suite

PROBE_CONFTEST = '''
import json, os, time, pytest
from pytest_llenergy.backends.base import GenerationStats, Workload


class Session:
    load_time_s = 0.0
    engine_info = {}
    calls = 0
    def prepare(self, config):
        prompts, size = [[5] * config.input_tokens] * config.num_prompts, config.batch_size
        work = Workload([prompts[i:i + size] for i in range(0, len(prompts), size)], config.output_tokens)
        work.arrivals = "poisson" if os.path.exists("served") else None
        return work
    def run(self, workload):
        Session.calls += 1
        if workload.arrivals is not None:  # the serving path: the warmup's full run, then each window
            with open("served.log", "a") as f:
                f.write(json.dumps([workload.num_prompts, workload.output_tokens]) + "\\n")
        if len(workload.batches) == 1 and workload.output_tokens < 40:  # a warmup probe
            with open("probes.log", "a") as f:
                f.write(json.dumps([len(workload.batches[0]), workload.output_tokens]) + "\\n")
            jitter = os.path.exists("jitter")
            time.sleep((0.002 if Session.calls % 2 else 0.03) if jitter else 0.005)  # jittery: never settles
        elif len(workload.batches) == 1:  # the full-length pass that ends a full warmup
            with open("full.log", "a") as f:
                f.write(json.dumps([len(workload.batches[0]), workload.output_tokens]) + "\\n")
        n = workload.num_prompts
        return GenerationStats(input_tokens=workload.input_tokens, output_tokens=n * workload.output_tokens,
                               num_prompts=n, duration_s=0.01)
    def close(self): pass


class Backend:
    name = "transformers"
    def available(self): return True, ""
    def load_key(self, experiment): return "one"
    def load(self, experiment): return Session()


@pytest.fixture(autouse=True)
def fake_backend(monkeypatch):
    import pytest_llenergy.plugin.measurement.runtest as runtest
    monkeypatch.setattr(runtest, "get_backend", lambda name: Backend())
'''

TEST = '''
def test_inference(lem_experiment, lem_session, lem_result, energy):
    workload = lem_session.prepare(lem_experiment.config.workload)
    energy.warmup(session=lem_session, workload=workload)
    with energy.measure("generate") as window:
        stats = lem_session.run(workload)
        window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens)
    lem_result.record_generation(stats)
'''

CAMPAIGN = """
name: warm
cycles: 3
order: interleaved
defaults: {{model: {{name: gpt2, weights: random}}, workload: {{num_prompts: 8, input_tokens: 8, output_tokens: 48}}}}
grid: {{shared: {{workload.batch_size: [2, 4]}}}}
measurement:
  energy_source: estimate
  warmup: {{cv_threshold: {cv}, window: 2, min_iterations: 2{extra}}}
gaps: {{between_experiments: 0, between_cycles: 0}}
"""


def run(pytester, extra="", jitter=False, cv=0.9):
    if jitter:
        (pytester.path / "jitter").write_text("")
    write_suite(pytester, CAMPAIGN.format(extra=extra, cv=cv), test=TEST)
    pytester.makeconftest(PROBE_CONFTEST)
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:randomly").assert_outcomes(passed=6)
    probes = [json.loads(line) for line in (pytester.path / "probes.log").read_text().splitlines()]
    found = sorted(results(pytester, "warm"), key=lambda r: (r["cycle"], r["experiment_index"]))
    return probes, [r["warmup"] for r in found], found


@pytest.mark.slow
def test_full_warmup_once_per_shape_then_one_probe(pytester):
    probes, warmups, found = run(pytester)
    assert [w["outcome"] for w in warmups[:2]] == ["converged", "converged"]
    assert [(w["outcome"], w["iterations"]) for w in warmups[2:]] == [("rewarm", 1)] * 4
    assert {tuple(p) for p in probes} == {(2, 4), (4, 4)}  # the real first batch, 4 new tokens
    assert len(probes) == sum(w["iterations"] for w in warmups)
    assert warmups[0]["probe"] == ("first batch (2 x 8 tokens), 4 new tokens; "
                                   "then the first batch once at full length (48 new tokens)")
    full = [json.loads(line) for line in (pytester.path / "full.log").read_text().splitlines()]
    assert sorted(full) == [[2, 48], [4, 48]]  # once per shape, after the full warmup only
    assert all(r["timing"]["warmup_s"] == pytest.approx(r["warmup"]["duration_s"]) for r in found)
    assert all(r["timing"]["measured_s"] > 0 for r in found)
    from pytest_llenergy.results import load

    frame = load(pytester.path / "lem-results").sort_values(["cycle", "experiment_index"])
    assert list(frame["warmup_outcome"]) == [w["outcome"] for w in warmups]
    assert list(frame["warmup_s"]) == pytest.approx([w["duration_s"] for w in warmups])


@pytest.mark.slow
@pytest.mark.parametrize("extra, check", [
    (", once: false", lambda ws: all(w["outcome"] == "converged" for w in ws)),
    (", rewarm_iterations: 3", lambda ws: [w["iterations"] for w in ws[2:]] == [3] * 4),
    (", rewarm_iterations: 0", lambda ws: [w["iterations"] for w in ws[2:]] == [0] * 4),
])
def test_once_and_rewarm_knobs(pytester, extra, check):
    _, warmups, _ = run(pytester, extra)
    assert check(warmups)


def test_probe_tokens_knob(pytester):
    probes, _, _ = run(pytester, ", probe_tokens: 7")
    assert {p[1] for p in probes} == {7}


@pytest.mark.slow
def test_time_budget_bounds_a_warmup_that_never_settles(pytester):
    _, warmups, _ = run(pytester, ", max_iterations: 10000, max_time_s: 0.3", jitter=True, cv=0.01)
    first = warmups[:2]
    assert [w["outcome"] for w in first] == ["budget_exhausted"] * 2
    assert all(0.3 <= w["duration_s"] < 3.0 for w in first)


SHAPES = """
name: warm
cycles: 2
defaults: {{model: {{name: gpt2, weights: random}}, workload: {{num_prompts: 10, batch_size: 4, input_tokens: 8, output_tokens: 48}}}}
experiments: [{{}}]
measurement:
  energy_source: estimate
  warmup: {{cv_threshold: 0.9, window: 2, min_iterations: 2{extra}}}
gaps: {{between_experiments: 0, between_cycles: 0}}
"""


@pytest.mark.parametrize("extra, warmed", [("", 2), (", max_time_s: 0.000001", 1)])
def test_every_batch_shape_runs_once_at_full_length(pytester, extra, warmed):
    """10 prompts in batches of 4: shapes (4 x 8) and (2 x 8); each once before the first window,
    unless the time budget is spent (then the first only, and the result says so)."""
    write_suite(pytester, SHAPES.format(extra=extra), test=TEST)
    pytester.makeconftest(PROBE_CONFTEST)
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:randomly").assert_outcomes(passed=2)
    full = [json.loads(line) for line in (pytester.path / "full.log").read_text().splitlines()]
    assert full == [[4, 48], [2, 48]][:warmed]
    first, second = sorted(results(pytester, "warm"), key=lambda r: r["cycle"])
    assert first["warmup"]["probe"].endswith(f"then {warmed} of its 2 batch shapes once each at full length "
                                             "(48 new tokens)")
    skipped = [w for w in first["warnings"] if "batch shapes not run at full length" in w]
    assert len(skipped) == (warmed == 1)
    assert second["warmup"]["outcome"] == "rewarm" and not second["warnings"]


def test_a_served_workload_warms_up_on_its_serving_path(pytester):
    """Arrivals: after the probes (offline, the first batch) the whole workload runs once as served."""
    (pytester.path / "served").write_text("")
    write_suite(pytester, SHAPES.format(extra=""), test=TEST)
    pytester.makeconftest(PROBE_CONFTEST)
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:randomly").assert_outcomes(passed=2)
    served = [json.loads(line) for line in (pytester.path / "served.log").read_text().splitlines()]
    assert served == [[10, 48]] * 3  # the warmup's run, then the windows of cycles 1 and 2
    first = min(results(pytester, "warm"), key=lambda r: r["cycle"])
    assert first["warmup"]["probe"].endswith("then the whole workload once on its serving path (10 requests, 48 new tokens)")
    assert not (pytester.path / "full.log").exists()  # no offline full-length batch: the served run replaces it
