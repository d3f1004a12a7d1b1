"""Fixtures for dispatch tests: a stand-in ``docker`` on PATH, and campaign projects that use it."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

FAKE_COMPOSE = """
services:
  transformers:
    image: lem-fake-transformers:1
  vllm:
    image: lem-fake-vllm:1
"""

# bs1 passes, bs2 fails in the "container": the host items must follow.
FAILING_TEST = '''
def test_inference(lem_experiment, lem_session, lem_result):
    stats = lem_session.run(lem_session.prepare(lem_experiment.config.workload))
    lem_result.record_generation(stats)
    assert lem_experiment.config.workload.batch_size == 1, "batch size 2 fails on purpose"
'''

# The real lem_session fixture and its per-process SessionCache, with a backend whose load is instant:
# load.cold says whether the model was loaded for the item or reused from the previous one.
REUSING_BACKEND_CONFTEST = """
import pytest
from pytest_llenergy.backends.base import GenerationStats
from pytest_llenergy.plugin.measurement import runtest


class FakeSession:
    load_time_s = 0.01
    engine_info = {"engine": "fake"}

    def prepare(self, workload):
        return workload

    def run(self, workload):
        n = workload.num_prompts
        return GenerationStats(input_tokens=n * workload.input_tokens, output_tokens=n * workload.output_tokens,
                               num_prompts=n, duration_s=0.05, batch_latencies_s=[0.05])

    def close(self):
        pass


class FakeBackend:
    def available(self):
        return True, ""

    def load_key(self, config):
        return config.model.name

    def load(self, config):
        return FakeSession()


@pytest.fixture(autouse=True)
def _fake_backend(monkeypatch):
    monkeypatch.setattr(runtest, "get_backend", lambda name: FakeBackend())
"""


# The reusing fake backend, whose batches take longer (so cost more replayed energy) at the smaller batch sizes.
SLEEPY_BACKEND_CONFTEST = """
import time
import pytest
from pytest_llenergy.backends.base import GenerationStats
from pytest_llenergy.plugin.measurement import runtest

SECONDS = {1: 0.30, 2: 0.10, 4: 0.11}


class SleepySession:
    load_time_s = 0.01
    engine_info = {"engine": "fake"}

    def __init__(self, bs):
        self.bs = bs

    def prepare(self, workload):
        return workload

    def run(self, workload):
        time.sleep(SECONDS[self.bs])
        return GenerationStats(input_tokens=10, output_tokens=100, num_prompts=1, duration_s=SECONDS[self.bs],
                               batch_latencies_s=[SECONDS[self.bs]])

    def close(self):
        pass


class SleepyBackend:
    def available(self):
        return True, ""

    def load_key(self, config):
        return (config.model.name, config.workload.batch_size)

    def load(self, config):
        return SleepySession(config.workload.batch_size)


@pytest.fixture(autouse=True)
def _fake_backend(monkeypatch):
    monkeypatch.setattr(runtest, "get_backend", lambda name: SleepyBackend())
"""

SEARCH_TEST = '''
def test_inference(lem_experiment, lem_session, lem_result, energy):
    workload = lem_session.prepare(lem_experiment.config.workload)
    with energy.measure("generate") as window:
        stats = lem_session.run(workload)
        window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens)
    lem_result.record_generation(stats)
'''

# What a campaign adds to race its configurations (each item's energy follows SleepySession's seconds).
SEARCH_CAMPAIGN = """
cycles: 5
measurement:
  energy_source: replay
  sample_hz: 20
  baseline: {duration_s: 0.5, revalidate_every: 0}
  warmup: {mode: "off"}
gaps: {between_experiments: 0, between_cycles: 0}
search:
  objective: energy_per_output_token
  stop: {precision: 0.05}
"""


def expected_rounds(search: dict, ran: dict[str, list[int]]) -> dict[str, list[int]]:
    """The rounds each configuration should have run, by the race's answer: 1..k, k its drop round (the last round for
    a survivor), and a dropped reference on to round REFERENCE_ROUNDS unless the race ended first."""
    from pytest_llenergy.results.search import REFERENCE_ROUNDS

    drops = {d["config"]: d["round"] for d in search["dropped"]}
    out = {}
    for config in ran:
        k = drops.get(config, search["rounds"])
        if config == search["reference"] and config in drops:
            k = max(k, min(REFERENCE_ROUNDS, search["rounds"]))
        out[config] = list(range(1, k + 1))
    return out


class FakeDocker:
    """The stand-in CLI: its bin directory, its call log and the switches it reads."""

    def __init__(self, bin_dir: Path, log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bin_dir, self.log, self.monkeypatch = bin_dir, log, monkeypatch

    def set(self, **switches: str) -> None:
        for key, value in switches.items():
            self.monkeypatch.setenv(f"FAKE_DOCKER_{key.upper()}", value)

    def only_on_path(self) -> None:
        """PATH holds the fake alone (no real docker-compose to fall back on)."""
        self.monkeypatch.setenv("PATH", str(self.bin_dir))

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log.read_text().splitlines()]

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def compose_calls(self, verb: str) -> list[list[str]]:
        found = []
        for argv in self.calls():
            if argv[:1] != ["compose"]:
                continue
            args = argv[1:]
            i = 0
            while i < len(args) and args[i].startswith("-"):
                i += 2 if args[i] in ("-f", "-p", "--env-file") else 1
            if i < len(args) and args[i] == verb:
                found.append(argv)
        return found


@pytest.fixture
def fake_docker(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    bin_dir = tmp_path_factory.mktemp("fakebin")
    script = bin_dir / "docker"
    script.write_text(f"#!{sys.executable}\n" + (HERE / "fake_docker.py").read_text())
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    log = bin_dir / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    for key in ("DAEMON_DOWN", "NO_COMPOSE", "MISSING", "RUN_EXIT", "RUN_ERROR", "UP_FAIL", "CUDA", "NVIDIA"):
        monkeypatch.delenv(f"FAKE_DOCKER_{key}", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return FakeDocker(bin_dir, log, monkeypatch)


def fake_campaign(path: Path, *, mode: str = "docker", backends: tuple[str, ...] = ("transformers",),
                  batch_sizes: tuple[int, ...] = (1, 2), dispatch: str = "") -> str:
    """A campaign whose containers are the fake's local subprocesses: mounts map to the same paths."""
    return textwrap.dedent(f"""
        name: disp
        seed: 7
        defaults:
          model: {{name: gpt2, weights: random}}
          workload: {{num_prompts: 2, input_tokens: 4, output_tokens: 2}}
        grid:
          backends: {list(backends)}
          shared: {{workload.batch_size: {list(batch_sizes)}}}
        dispatch:
          mode: {mode}
          compose_file: compose.yaml
          project_dir: {path}
          results_dir: {path / "lem-results"}
          pytest_command: [{sys.executable}, -m, pytest]
        """) + "".join(f"  {line}\n" for line in textwrap.dedent(dispatch).strip().splitlines())


def write_fake_project(pytester: pytest.Pytester, campaign: str, test: str | None = None,
                       conftest: str | None = None) -> Path:
    from campaigns import CAMPAIGN_TEST, write_suite

    path = write_suite(pytester, campaign, test or CAMPAIGN_TEST)
    pytester.path.chmod(0o755)  # the project: readable by the containers' (non-root) user
    if conftest is not None:
        pytester.makeconftest(conftest)
    (pytester.path / "compose.yaml").write_text(FAKE_COMPOSE)
    return path


def results(pytester: pytest.Pytester, campaign: str = "disp") -> dict[str, dict]:
    """Result files of the (single) run, by item id."""
    files = sorted((pytester.path / "lem-results" / campaign).glob("*/experiments/*.json"))
    return {json.loads(f.read_text())["item_id"]: json.loads(f.read_text()) for f in files}


def manifest(pytester: pytest.Pytester, campaign: str = "disp") -> dict:
    files = sorted((pytester.path / "lem-results" / campaign).glob("*/manifest.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


from .docker_fixtures import daemon, test_image  # noqa: E402,F401  (fixtures of the real-daemon tests)
