"""Golden outputs of a fixed replay campaign: behaviour must not change (issue 30).

A small campaign (2 experiments x 3 cycles, replayed H200 trace, a fresh baseline and its
revalidations, fixed warmup, two windows per item, one budget that one item breaches) runs in a
pytest process of its own on a virtual clock (``tests/virtual_clock.py``), so that every figure
(energies, durations, tokens, samples, CIs, wall-time shares) repeats exactly on any machine and
any load. Its outputs, normalised, must equal ``tests/data/golden/replay_campaign/`` byte for byte:
each JSON file is compared after ``json.load``, normalisation and ``json.dumps(sort_keys=True)``
(key order is not compared, every value is); the results table (``summary.csv``), the time series
(Parquet, as JSON), the list of files the run wrote and the plugin's terminal lines as text.

Normalised, and nothing else (``NORMALISED``, ``ENVIRONMENT``, ``normalise_text``): wall-clock
timestamps (``datetime.now``, which the virtual clock does not drive), the host name, the replayed
device's uuid (a hash of the checkout's path), the run id, the temporary directory, and
environment.json's description of the machine. Not compared: report.html and plots/*.png (images
drawn by the installed matplotlib; their names are compared).

After an intended change: ``python tests/test_replay_golden.py --regen`` (or
``LEM_REGEN_GOLDEN=1 pytest tests/test_replay_golden.py``), then review ``git diff tests/data/golden``.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "golden" / "replay_campaign"
REGEN_ENV = "LEM_REGEN_GOLDEN"

#: Keys whose values are replaced by ``MARK`` wherever they occur, each with why it varies.
NORMALISED = {
    "started_at": "wall-clock time an item started (datetime.now: real time, not the virtual clock)",
    "ended_at": "wall-clock time an item ended (datetime.now)",
    "created_at": "wall-clock time the manifest / summary was first written (datetime.now)",
    "updated_at": "wall-clock time the manifest was last written (datetime.now)",
    "host": "the machine's host name",
    "uuid": "a replayed device's id: a hash of the trace file's absolute path (differs per checkout)",
}
#: Top-level keys of environment.json replaced by ``MARK``: the record describes the machine.
ENVIRONMENT = {
    "host": "host name",
    "gpu": "this machine's GPUs and driver (or why NVML is unavailable here)",
    "cpu": "CPU model, cores and memory",
    "os": "platform and kernel",
    "container": "whether this runs in a container",
    "python": "Python version and interpreter path",
    "packages": "installed versions (torch, transformers, numpy, pytest...)",
    "git": "commit of the working directory (None outside a repository)",
    "threads": "thread count from the cores and the current load average",
}
MARK = "<normalised>"

CAMPAIGN = """\
name: golden
cycles: 3
order: interleaved
seed: 42
defaults:
  backend: transformers
  model: {name: tiny-gpt2, weights: random}
  workload: {prompts: synthetic, num_prompts: 4, input_tokens: 16, output_tokens: 8}
grid: {shared: {workload.batch_size: [2, 4]}}
measurement:
  energy_source: replay
  sample_hz: 20
  baseline: {duration_s: 2, revalidate_every: 2, revalidate_duration_s: 1}
  warmup: {mode: fixed, iterations: 2}
gaps: {between_experiments: 0, between_cycles: 0}
budgets:
  - {select: "*", limits: {energy_per_output_token: "2 J"}, adjusted: false}
"""

#: A session that takes BATCH_S (virtual) seconds per batch: no model, no transformers import. Like
#: the campaign, written out here rather than built from tests/campaigns.py's FAKE_SESSION_CONFTEST:
#: the golden's inputs are frozen, so an edit to a shared helper cannot move it.
CONFTEST = '''
import time

import pytest
from pytest_llenergy.backends.base import GenerationStats

BATCH_S = 0.5


class FakeSession:
    load_time_s = 0.01
    engine_info = {"engine": "fake"}

    def prepare(self, workload):
        return workload

    def run(self, workload):
        n = workload.num_prompts
        batches = -(-n // workload.batch_size)
        time.sleep(BATCH_S * batches)
        return GenerationStats(input_tokens=n * workload.input_tokens, output_tokens=n * workload.output_tokens,
                               num_prompts=n, duration_s=BATCH_S * batches, batch_latencies_s=[BATCH_S] * batches)

    def close(self):
        pass


@pytest.fixture
def lem_session():
    return FakeSession()
'''

TEST = '''
import time


def test_inference(lem_experiment, lem_session, lem_result, energy):
    workload = lem_session.prepare(lem_experiment.config.workload)
    energy.warmup(lambda: lem_session.run(workload))
    with energy.measure("generate") as window:
        stats = lem_session.run(workload)
        window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens)
    with energy.measure("detokenize"):
        time.sleep(0.2)
    lem_result.record_generation(stats)
'''

#: The campaign's process: the virtual clock first, before pytest or the plugin is imported.
RUNNER = f'''
import importlib.util, sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("virtual_clock", {str(HERE / "virtual_clock.py")!r})
clock = importlib.util.module_from_spec(spec)
sys.modules["virtual_clock"] = clock
spec.loader.exec_module(clock)
clock.install(Path.cwd())

import pytest

code = pytest.main(["--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider", "-q"])
print("LEM_GOLDEN transformers imported:", "transformers" in sys.modules)
sys.exit(code)
'''


def normalise(value: Any, keys: dict[str, str], subs: dict[str, str]) -> Any:
    """``value`` with the values of ``keys`` replaced by MARK and ``subs`` replaced in strings."""
    if isinstance(value, dict):
        return {k: MARK if k in keys else normalise(v, keys, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, keys, subs) for v in value]
    if isinstance(value, str):
        return normalise_text(value, subs)
    return value


def normalise_text(text: str, subs: dict[str, str]) -> str:
    """``text`` with the temporary directory and the run id replaced (longest first)."""
    for old in sorted(subs, key=len, reverse=True):
        text = text.replace(old, subs[old])
    return text


def dump(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def terminal_lines(stdout: str, subs: dict[str, str]) -> str:
    """The run's output without pytest's drawing (rule width, progress percentage) or its timing."""
    out = []
    for line in stdout.splitlines():
        if line.startswith("LEM_GOLDEN"):
            continue
        line = re.sub(r"^[=_]+ (.*?) [=_]+$", r"== \1 ==", line)  # section rules: their title
        line = re.sub(r"\s+\[\s*\d+%\]$", "", line)  # progress: the outcome letters
        out.append(normalise_text(line, subs))
    return "\n".join(out) + "\n"


def timeseries_json(path: Path) -> str:
    import pandas as pd

    df = pd.read_parquet(path)
    return dump({"columns": [str(c) for c in df.columns], "dtypes": [str(t) for t in df.dtypes],
                 "rows": df.astype(object).values.tolist()})


def csv_text(path: Path, subs: dict[str, str]) -> str:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    return "\n".join(",".join(normalise_text(c, subs) for c in row) for row in rows) + "\n"


def collect(run_dir: Path, stdout: str, subs: dict[str, str]) -> dict[str, str]:
    """Every compared output of the run, normalised, by its golden file name."""
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    out = {"files.json": dump(files), "terminal.txt": terminal_lines(stdout, subs)}
    for name in files:
        path = run_dir / name
        if name == "environment.json":
            out[name] = dump(normalise({k: MARK if k in ENVIRONMENT else v
                                        for k, v in json.loads(path.read_text()).items()}, NORMALISED, subs))
        elif name.endswith(".json"):
            out[name] = dump(normalise(json.loads(path.read_text()), NORMALISED, subs))
        elif name.endswith(".parquet"):
            out[name.removesuffix(".parquet") + ".json"] = timeseries_json(path)
        elif name.endswith(".csv"):
            out[name] = csv_text(path, subs)
    return out


def run_campaign(pytester: pytest.Pytester) -> tuple[Path, str]:
    """Run the campaign in its own process; its run directory and stdout."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=TEST)
    (pytester.path / "campaign.yaml").write_text(CAMPAIGN)
    result = pytester.run(sys.executable, "-c", RUNNER, timeout=300)
    stdout = result.stdout.str()
    assert "LEM_GOLDEN transformers imported: False" in stdout, stdout + result.stderr.str()
    assert result.parseoutcomes() == {"passed": 5, "failed": 1}, stdout + result.stderr.str()
    runs = list((pytester.path / "lem-results" / "golden").iterdir())
    assert len(runs) == 1, runs
    return runs[0], stdout


def write_golden(produced: dict[str, str]) -> None:
    shutil.rmtree(GOLDEN, ignore_errors=True)
    for name, text in produced.items():
        path = GOLDEN / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def golden_files() -> dict[str, str]:
    return {p.relative_to(GOLDEN).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(GOLDEN.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_replay_campaign_outputs_match_golden(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # pytest's rules and wrapping
    for name in ("CI", "BUILD_NUMBER"):  # on CI pytest stops truncating the short summary's messages
        monkeypatch.delenv(name, raising=False)
    run_dir, stdout = run_campaign(pytester)
    subs = {str(pytester.path): "<tmp>", str(pytester.path.resolve()): "<tmp>", run_dir.name: "<run_id>"}
    produced = collect(run_dir, stdout, subs)
    if os.environ.get(REGEN_ENV):
        write_golden(produced)
        pytest.skip(f"{REGEN_ENV}: golden files rewritten in {GOLDEN}; review `git diff {GOLDEN}`")
    expected = golden_files()
    assert expected, f"no golden files in {GOLDEN}: run `python {Path(__file__).name} --regen`"
    assert sorted(produced) == sorted(expected), "outputs differ in their files"
    changed = [name for name in expected if produced[name] != expected[name]]
    diff = "".join(line for name in changed[:3] for line in difflib.unified_diff(
        expected[name].splitlines(keepends=True), produced[name].splitlines(keepends=True),
        f"golden/{name}", f"now/{name}", n=2))
    assert not changed, (f"{len(changed)} output(s) differ from {GOLDEN} ({', '.join(changed)}); if intended, "
                         f"regenerate: python tests/{Path(__file__).name} --regen\n{diff[:6000]}")


def test_normalisation_keeps_figures_and_replaces_only_listed_keys() -> None:
    subs = {"/tmp/x": "<tmp>", "2026-12-04T16-31-12-d59e": "<run_id>"}
    value = {"started_at": "2026-12-04T16:31:12+00:00", "energy_j": 36.62158662452407,
             "run_dirs": ["/tmp/x/lem-results/golden/2026-12-04T16-31-12-d59e"], "started": "kept",
             "nested": [{"host": "vm", "n": 3}]}
    assert normalise(value, NORMALISED, subs) == {
        "started_at": MARK, "energy_j": 36.62158662452407, "run_dirs": ["<tmp>/lem-results/golden/<run_id>"],
        "started": "kept", "nested": [{"host": MARK, "n": 3}]}
    assert terminal_lines("....B.          [100%]\n===== llenergy =====\nresults: /tmp/x/a", subs) == \
        "....B.\n== llenergy ==\nresults: <tmp>/a\n"


def test_virtual_clock_advances_only_for_main_thread_sleeps_in_our_code(tmp_path: Path) -> None:
    from virtual_clock import VirtualClock

    clock = VirtualClock(HERE)
    start = clock.monotonic()
    clock.sleep(0.5, sys._getframe())  # a file under HERE: virtual
    assert clock.monotonic() == start + 0.5 and clock.time() == clock.wall0 + 0.5
    ours = {"__name__": "pytest_llenergy.energy.fake", "clock": clock, "sys": sys}
    exec(compile("clock.sleep(0.25, sys._getframe())", str(tmp_path / "fake.py"), "exec"), ours)
    assert clock.monotonic() == start + 0.75
    library = {"__name__": "subprocess", "clock": clock, "sys": sys}
    exec(compile("clock.sleep(0.01, sys._getframe())", str(tmp_path / "lib.py"), "exec"), library)
    thread = threading.Thread(target=clock.sleep, args=(0.01, sys._getframe()))
    thread.start()
    thread.join()
    assert clock.monotonic() == start + 0.75  # a library's sleep and a background thread's are real


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        sys.exit(f"usage: python {sys.argv[0]} --regen   (rewrite {GOLDEN} from the current code)")
    os.environ[REGEN_ENV] = "1"
    os.chdir(HERE.parent)
    sys.exit(pytest.main([str(Path(__file__).resolve()), "-p", "no:cacheprovider", "-q", "-rs",
                          "-k", "test_replay_campaign_outputs_match_golden"]))
