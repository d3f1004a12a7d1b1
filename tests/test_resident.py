"""Resident sessions (issue 21): LRU within max_resident and a memory budget, footprints, eviction records."""

from __future__ import annotations

import pytest
from campaigns import results, write_suite

from pytest_llenergy.backends.base import Footprint
from pytest_llenergy.backends.resident import ResidentSessions
from pytest_llenergy.backends.vllm.footprint import vllm_footprint
from pytest_llenergy.config.experiment import ExperimentConfig
from pytest_llenergy.config.reuse import ReuseConfig

GiB = 2**30


class FakeSession:
    load_time_s = 0.0

    def __init__(self, name, size, events, device="cuda"):
        self.name, self.size, self.events, self.device = name, size, events, device

    def footprint(self):
        return Footprint(self.size, self.device, "fake")

    def close(self):
        self.events.append(f"close {self.name}")


class FakeBackend:
    """Models named in ``sizes`` (GiB); loading appends to ``events``."""

    def __init__(self, sizes, estimate=True, device="cuda"):
        self.sizes, self.estimate, self.device, self.events = sizes, estimate, device, []

    def estimate_footprint(self, experiment):
        return Footprint(self.sizes[experiment.model.name] * GiB, self.device) if self.estimate else None

    def load(self, experiment):
        name = experiment.model.name
        self.events.append(f"load {name}")
        return FakeSession(name, self.sizes[name] * GiB, self.events, self.device)


def exp(name, vllm=None, **settings):
    data = {"model": {"name": name, "weights": "random"}}
    if vllm is not None or settings:
        data.update(backend="vllm", vllm={**(vllm or {}), **settings})
    return ExperimentConfig.model_validate(data)


def cycle(cache, backend, names, rounds=2, force_cold=False):
    return [cache.get(backend, exp(n), n, force_cold)[1] for _ in range(rounds) for n in names]


def gpu_of(total_gib):
    return lambda device: total_gib * GiB if device == "cuda" else None


def test_three_models_interleaved_load_once_with_room_for_three():
    backend = FakeBackend({"gpt2": 1, "tiny-llama": 1, "qwen2.5-0.5b": 1})
    cache = ResidentSessions(3, ("fraction", 0.8), gpu_of(100), lambda d: None)
    infos = cycle(cache, backend, ["gpt2", "tiny-llama", "qwen2.5-0.5b"], rounds=3)
    assert backend.events == ["load gpt2", "load tiny-llama", "load qwen2.5-0.5b"]
    assert [i["status"] for i in infos] == ["loaded"] * 3 + ["resident"] * 6
    assert cache.counts.loads == 3 and cache.counts.reuses == 6 and cache.counts.evictions == 0


@pytest.mark.slow
def test_max_resident_one_reloads_as_models_alternate():
    backend = FakeBackend({"gpt2": 1, "tiny-llama": 1})
    cache = ResidentSessions(1, ("fraction", 0.8), gpu_of(100), lambda d: None)
    infos = cycle(cache, backend, ["gpt2", "tiny-llama"])
    assert backend.events == ["load gpt2", "close gpt2", "load tiny-llama", "close tiny-llama", "load gpt2",
                              "close gpt2", "load tiny-llama"]
    assert [i["status"] for i in infos] == ["loaded", "loaded", "reloaded", "reloaded"]
    assert infos[1]["evicted"][0]["reason"] == "max_resident 1 reached"


def test_budget_too_small_for_two_evicts_before_loading():
    backend = FakeBackend({"gpt2": 30, "tiny-llama": 30})
    in_use = {"cuda": 0}

    def used(device):
        return in_use["cuda"]

    cache = ResidentSessions(4, ("bytes", 50 * GiB), gpu_of(100), used)
    cache.get(backend, exp("gpt2"), "gpt2")
    in_use["cuda"] = 30 * GiB

    def load(experiment, real=backend.load):  # the close must come before this load
        in_use["cuda"] = 30 * GiB
        return real(experiment)

    original_close = FakeSession.close

    def close(self):
        in_use["cuda"] = 0
        original_close(self)

    FakeSession.close = close
    try:
        backend.load = load
        _, info = cache.get(backend, exp("tiny-llama"), "tiny-llama")
    finally:
        FakeSession.close = original_close
    assert backend.events == ["load gpt2", "close gpt2", "load tiny-llama"]
    (evicted,) = info["evicted"]
    assert evicted["model"] == "gpt2" and evicted["freed_bytes"] == 30 * GiB
    assert "memory budget: 30.00 GiB needed" in evicted["reason"] and "of 50.00 GiB" in evicted["reason"]


def test_percentage_budget_follows_the_device_total():
    backend = FakeBackend({"a": 30, "b": 30})
    roomy = ResidentSessions(4, ReuseConfig(memory_budget="80%").budget(), gpu_of(100), lambda d: None)
    cycle(roomy, backend, ["a", "b"])
    assert backend.events == ["load a", "load b"]
    backend.events.clear()
    tight = ResidentSessions(4, ReuseConfig(memory_budget="50%").budget(), gpu_of(100), lambda d: None)
    cycle(tight, backend, ["a", "b"], rounds=1)
    assert backend.events == ["load a", "close a", "load b"]


def test_footprint_larger_than_estimated_evicts_after_loading():
    backend = FakeBackend({"a": 20, "b": 40}, estimate=False)
    cache = ResidentSessions(4, ("bytes", 50 * GiB), gpu_of(100), lambda d: None)
    cache.get(backend, exp("a"), "a")
    _, info = cache.get(backend, exp("b"), "b")  # no estimate: assumed like the resident one (20 GiB fits), measured 40
    assert backend.events == ["load a", "load b", "close a"]
    assert "more than estimated" in info["evicted"][0]["reason"]


@pytest.mark.slow
def test_force_cold_start_reloads_every_item():
    backend = FakeBackend({"a": 1})
    cache = ResidentSessions(4, ("fraction", 0.8), gpu_of(100), lambda d: None)
    infos = cycle(cache, backend, ["a"], rounds=3, force_cold=True)
    assert backend.events == ["load a", "close a", "load a", "close a", "load a"]
    assert [i["status"] for i in infos] == ["cold_start"] * 3
    assert infos[1]["evicted"][0]["reason"].startswith("force_cold_start")


def test_one_session_over_the_budget_loads_alone_and_says_so():
    backend = FakeBackend({"a": 10, "big": 90})
    cache = ResidentSessions(4, ("fraction", 0.8), gpu_of(100), lambda d: None)
    cache.get(backend, exp("a"), "a")
    _, info = cache.get(backend, exp("big"), "big")
    assert backend.events == ["load a", "close a", "load big"]
    assert any("exceeds the memory budget" in w for w in info["warnings"])


def test_vllm_counts_its_whole_reservation():
    total = 100 * GiB
    assert vllm_footprint(exp("a", gpu_memory_utilization=0.5), device="cuda", gpu_total=total).bytes == 50 * GiB
    default = vllm_footprint(exp("a", {}), device="cuda", gpu_total=total)
    assert default.bytes == int(0.9 * total) and "gpu_memory_utilization 0.9" in default.detail
    tp2 = vllm_footprint(exp("a", gpu_memory_utilization=0.5, tensor_parallel_size=2), device="cuda", gpu_total=total)
    assert tp2.bytes == 100 * GiB
    resolved = {"cache_config": {"gpu_memory_utilization": 0.3}, "device_config": {"device_type": "cuda"}}
    assert vllm_footprint(exp("a", {}), resolved, gpu_total=total).bytes == int(0.3 * total)


def test_two_vllm_engines_share_a_gpu_only_when_their_reservations_fit(monkeypatch):
    from pytest_llenergy.backends.vllm import footprint as fp

    monkeypatch.setattr(fp, "gpu_bytes", lambda index=0: 100 * GiB)

    class VllmLike(FakeBackend):
        def estimate_footprint(self, experiment):
            return vllm_footprint(experiment, device="cuda")

        def load(self, experiment):
            self.events.append(f"load {experiment.model.name}")
            return FakeSession(experiment.model.name, self.estimate_footprint(experiment).bytes, self.events)

    for shares, expected in (((0.45, 0.45), ["load a", "load b"]), ((0.5, 0.6), ["load a", "close a", "load b"])):
        backend = VllmLike({})
        cache = ResidentSessions(4, ("fraction", 0.95), gpu_of(100), lambda d: None)
        for name, share in zip("ab", shares):
            cache.get(backend, exp(name, gpu_memory_utilization=share), name)
        assert backend.events == expected


@pytest.mark.parametrize("text, parsed", [("80%", ("fraction", 0.8)), ("40GiB", ("bytes", 40 * GiB)),
                                          ("512 MB", ("bytes", 512e6))])
def test_memory_budget_values(text, parsed):
    assert ReuseConfig(memory_budget=text).budget() == pytest.approx(parsed)


@pytest.mark.parametrize("bad", ["0%", "120%", "12 parsecs", "-1GB"])
def test_bad_memory_budget_is_a_config_error(bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="memory"):
        ReuseConfig(memory_budget=bad)


RESIDENT_CONFTEST = '''
import pytest
from pytest_llenergy.backends.base import Footprint, GenerationStats


class Session:
    load_time_s = 0.01
    engine_info = {}
    def __init__(self, key): self.key = key
    def prepare(self, workload): return workload
    def footprint(self): return Footprint(1000, "cpu")
    def run(self, workload):
        return GenerationStats(input_tokens=1, output_tokens=self.key, num_prompts=1, duration_s=0.01)
    def close(self):
        with open("events.log", "a") as f: f.write(f"close {self.key}\\n")


class Backend:
    name = "transformers"
    def available(self): return True, ""
    def load_key(self, experiment): return str(experiment.workload.batch_size)
    def load(self, experiment):
        with open("events.log", "a") as f: f.write(f"load {experiment.workload.batch_size}\\n")
        return Session(experiment.workload.batch_size)


@pytest.fixture(autouse=True)
def fake_backend(monkeypatch):
    import pytest_llenergy.plugin.measurement.runtest as runtest
    monkeypatch.setattr(runtest, "get_backend", lambda name: Backend())
'''

RUN_TEST = '''
def test_inference(lem_experiment, lem_session, lem_result):
    stats = lem_session.run(None)
    assert stats.output_tokens == lem_experiment.config.workload.batch_size  # the right model
    lem_result.record_generation(stats)
'''

CAMPAIGN = """
name: resident
cycles: 2
order: interleaved
defaults: {model: {name: gpt2, weights: random}}
grid: {shared: {workload.batch_size: [1, 2, 4]}}
measurement: {energy_source: estimate}
gaps: {between_experiments: 0, between_cycles: 0}
"""


@pytest.mark.slow
@pytest.mark.parametrize("reuse, loads, statuses", [
    ("", ["load 1", "load 2", "load 4"], {1: "loaded", 2: "resident"}),
    ("reuse: {max_resident: 1}\n", ["load 1", "load 2", "load 4"] * 2, {1: "loaded", 2: "reloaded"}),
])
def test_interleaved_campaign_over_three_models(pytester, reuse, loads, statuses):
    write_suite(pytester, CAMPAIGN + reuse, test=RUN_TEST)
    pytester.makeconftest(RESIDENT_CONFTEST)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml")
    result.assert_outcomes(passed=6)
    events = [e for e in (pytester.path / "events.log").read_text().split("\n") if e.startswith("load")]
    assert events == loads
    found = results(pytester, "resident")
    assert {r["load"]["status"] for r in found if r["cycle"] == 1} == {statuses[1]}
    assert {r["load"]["status"] for r in found if r["cycle"] == 2} == {statuses[2]}
    assert all(r["timing"]["wall_s"] > 0 for r in found)
    from pytest_llenergy.results import load

    frame = load(pytester.path / "lem-results")
    assert set(frame.loc[frame.cycle == 2, "load_status"]) == {statuses[2]}
    result.stdout.fnmatch_lines(["wall time * s over 6 item(s): measured *", f"model loads: {len(loads)} (*"])


def test_an_eviction_records_how_long_its_close_took_and_how_the_engine_closed(monkeypatch):
    import types

    from pytest_llenergy.backends import resident

    clock = [100.0]
    monkeypatch.setattr(resident, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    backend = FakeBackend({"a": 1, "b": 1})
    cache = ResidentSessions(max_resident=1, total_bytes=gpu_of(80), in_use_bytes=lambda device: None)
    cache.get(backend, exp("a"), "a")
    first = cache.resident["a"].session
    first.shutdown_outcome = "shutdown() took over 15 s; stopped 1 engine process(es)"
    first.close = lambda: clock.__setitem__(0, clock[0] + 16.5)  # the close takes 16.5 s
    _, info = cache.get(backend, exp("b"), "b")
    (evicted,) = info["evicted"]
    assert evicted["shutdown"] == first.shutdown_outcome and evicted["close_s"] == 16.5
    assert cache.counts.evict_s == 16.5
