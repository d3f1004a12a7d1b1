"""Container dispatch against a real Docker daemon (marker ``docker``; skipped with the reason without one).

``scripts/ci_docker.sh`` starts a private daemon (no registry is needed) and runs these tests.
The test image is made locally with ``docker import``: a nearly empty root filesystem whose
compose service bind-mounts this machine's Python environment and the plugin's source read-only,
so the container runs the very pytest-llenergy under test. A conftest in the test project
replaces the backend session with a fake one, so no model or torch is needed in the container.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import pytest_llenergy

from .conftest import (
    FAILING_TEST,
    SEARCH_CAMPAIGN,
    SEARCH_TEST,
    SLEEPY_BACKEND_CONFTEST,
    expected_rounds,
    manifest,
    results,
)

pytestmark = [pytest.mark.docker, pytest.mark.requires("docker")]

PLUGIN_SOURCE = Path(pytest_llenergy.__file__).resolve().parent.parent


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def _compose_flavours() -> list:
    def works(argv: list[str]) -> bool:
        try:
            return subprocess.run([*argv, "version"], capture_output=True, timeout=30).returncode == 0
        except OSError:
            return False

    flavours = []
    for name, argv, component in (("v2", ["docker", "compose"], "compose"), ("v1", ["docker-compose"], "docker-compose")):
        marks = [pytest.mark.requires(component)]
        if not works(argv):
            marks.append(pytest.mark.skip(reason=f"`{' '.join(argv)}` not installed (scripts/ci_docker.sh installs it)"))
        flavours.append(pytest.param(argv, id=name, marks=marks))
    return flavours


def _mounts() -> list[str]:
    """Read-only bind mounts of this machine's Python and the plugin source, at their own paths."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), PLUGIN_SOURCE}
    paths = {p for p in paths if not any(o != p and o in p.parents for o in paths)}
    mounts = ["/usr:/usr:ro"]
    if Path("/etc/ld.so.cache").exists():
        mounts.append("/etc/ld.so.cache:/etc/ld.so.cache:ro")
    mounts += [f"{p}:{p}:ro" for p in sorted(paths) if Path("/usr") not in p.parents and p != Path("/usr")]
    return mounts


MODEL_CACHE = "lem-test-model-cache"


def write_project(pytester: pytest.Pytester, image: str, compose_command: list[str], *,
                  pytest_command: list[str] | None = None, service_extra: str = "", test: str = FAILING_TEST,
                  network: str = "none") -> None:
    """A project like the stock one: non-root user from PUID/PGID, a named model cache, never pulled."""
    from .conftest import REUSING_BACKEND_CONFTEST

    pytester.path.chmod(0o755)  # pytest's temporary directories are private; the container's user reads the project
    pytester.makeconftest(REUSING_BACKEND_CONFTEST)
    pytester.makepyfile(test_suite=test)
    volumes = "\n".join(f"      - {m}" for m in [*_mounts(), "${LEM_PROJECT_DIR}:/workspace",
                                                 "${LEM_RESULTS_DIR}:/results", "model-cache:/cache"])
    (pytester.path / "compose.yaml").write_text(textwrap.dedent("""
        services:
          transformers:
            image: {image}
            user: "${{PUID:-1000}}:${{PGID:-1000}}"
            pull_policy: never
            network_mode: {network}
            init: true
            working_dir: /workspace
            command: ["sleep", "infinity"]
            environment:
              HOME: /tmp
              PYTHONPATH: {source}
              PYTHONDONTWRITEBYTECODE: "1"
              NVIDIA_VISIBLE_DEVICES: "${{NVIDIA_VISIBLE_DEVICES:-all}}"
        {extra}
            volumes:
        """).format(image=image, source=PLUGIN_SOURCE, extra=textwrap.indent(service_extra, " " * 4), network=network) + volumes + "\n"
        + f"volumes:\n  model-cache:\n    name: {MODEL_CACHE}\n    external: true\n")
    command = pytest_command or [sys.executable, "-m", "pytest"]
    (pytester.path / "campaign.yaml").write_text(textwrap.dedent(f"""
        name: dock
        seed: 11
        defaults:
          model: {{name: gpt2, weights: random}}
          workload: {{num_prompts: 2, input_tokens: 4, output_tokens: 2}}
        grid:
          shared: {{workload.batch_size: [1, 2]}}
        dispatch:
          mode: docker
          compose_file: compose.yaml
          compose_command: {json.dumps(compose_command)}
          pytest_command: {json.dumps(command)}
        """))


def _container_user() -> int:
    """The uid containers run as here: this user, or (run as root) the fallback non-root user."""
    return os.getuid() or 1000


def _run_dir(result: pytest.RunResult) -> Path:
    line = next(line for line in result.outlines if line.startswith("llenergy: results -> "))
    return Path(line.split(" -> ", 1)[1])


def _project(run_id: str) -> str:
    return "lem-" + re.sub(r"[^a-z0-9_-]+", "-", run_id.lower())


def _project_containers(run_id: str) -> list[str]:
    proc = _docker("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={_project(run_id)}")
    return proc.stdout.split()


@pytest.mark.parametrize("strategy", ["ephemeral", "persistent"])
@pytest.mark.parametrize("compose_command", _compose_flavours())
def test_two_item_campaign_in_real_containers(pytester, test_image, compose_command, strategy, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    # as shipped: host networking (HOSTNAME inside is the host's); a git checkout, with the compose file of its own
    write_project(pytester, test_image, compose_command, network="host")
    subprocess.run(["git", "init", "-q"], cwd=pytester.path, check=True)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-container-strategy", strategy,
                                "-v", "-p", "no:cacheprovider")
    # the host items follow the containers' outcomes: bs1 passes, bs2 fails (with the container's output)
    result.assert_outcomes(passed=1, failed=1)
    failure = (["*AssertionError: batch size 2 fails on purpose*", "*container output (last 60 lines)*"]
               if strategy == "ephemeral" else ["*test_suite.py:4: in test_inference", "E   assert 2 == 1"])
    result.stdout.fnmatch_lines([f"*docker {strategy}, service transformers, image {test_image}, container *",
                                 *failure])
    run_dir = _run_dir(result)
    run_id = run_dir.name
    # results land in the host's run directory, with the controller's ids, written by a non-root container user
    found = results(pytester, "dock")
    assert [k.rsplit("-", 1)[0] for k in sorted(found)] == ["c1-transformers-gpt2-bs1-fp32", "c1-transformers-gpt2-bs2-fp32"]
    assert {r["run_id"] for r in found.values()} == {run_id}
    assert [found[k]["status"] for k in sorted(found)] == ["passed", "failed"]
    for path in (run_dir / "experiments").glob("*.json"):
        assert path.stat().st_uid == _container_user() != 0
    # provenance: the image's name and real id, and the versions the container saw
    image_id = json.loads(_docker("image", "inspect", "--format", "{{json .Id}}", test_image).stdout)
    for stored in found.values():
        assert stored["container"]["image"] == test_image and stored["container"]["image_id"] == image_id
        assert stored["container"]["versions"]["pytest-llenergy"] == pytest_llenergy.__version__
    # persistent: one worker for both items, so the second reused the loaded model (as locally)
    cold = [found[k]["load"]["cold"] for k in sorted(found)]
    assert cold == ([True, False] if strategy == "persistent" else [True, True])
    entries = manifest(pytester, "dock")["entries"]
    assert sorted(e["status"] for e in entries.values()) == ["failed", "passed"]
    assert {e["container"]["image_id"] for e in entries.values()} == {image_id}
    # the container's name, as the manifest has it (not the host's name, which HOSTNAME holds under network_mode: host)
    for key, stored in found.items():
        (entry,) = [e for e in entries.values() if e["item_id"] == key]
        assert stored["container"]["container"] == entry["container"]["container"] != socket.gethostname()
        assert stored["container"]["container"].startswith(_project(run_id))
    # secrets.env beside a compose file of one's own is never committed
    untracked = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=pytester.path,
                               capture_output=True, text=True, check=True).stdout
    assert (pytester.path / "secrets.env").is_file() and "secrets.env" not in untracked, untracked
    # nothing left behind: --rm, or `down` at session end; the container wrote no pytest cache
    assert _project_containers(run_id) == []
    assert not (pytester.path / ".pytest_cache").exists()
    if strategy == "persistent":
        result.stdout.fnmatch_lines(["llenergy: docker: brought persistent containers down (transformers)"])
    # one model cache for every run, under its fixed name (not <project>_model-cache)
    volumes = _docker("volume", "ls", "-q").stdout.split()
    assert MODEL_CACHE in volumes and not [v for v in volumes if v.endswith("_model-cache")]


def test_image_missing_stops_before_the_campaign(pytester, daemon):
    write_project(pytester, "lem-test-never-built:0", ["docker-compose"] if _v1_only() else ["docker", "compose"])
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*image lem-test-never-built:0 for service 'transformers' is not on this machine "
                                 "(dispatch never pulls or builds); build it with: * -f compose.yaml build transformers"])
    assert "lem-test-never-built" not in _docker("image", "ls", "--format", "{{.Repository}}").stdout  # never pulled


def test_container_command_missing(pytester, test_image):
    write_project(pytester, test_image, ["docker-compose"] if _v1_only() else ["docker", "compose"],
                  pytest_command=["/no/such/pytest"])
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-k", "bs1", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*could not run in docker service 'transformers': container *: exit 12[67]*",
                                 "*container output*", "*/no/such/pytest*"])
    (stored,) = results(pytester, "dock").values()
    assert stored["status"] == "failed"


def _v1_only() -> bool:
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0


# An item that starts, tells the test so (a file in the results mount), then works until stopped.
BLOCKING_TEST = '''
import os
import time


def test_inference(lem_experiment, lem_session, lem_result):
    marker = os.path.join(str(lem_result.run.run_dir.path), "started-" + lem_experiment.id)
    open(marker, "w").close()
    time.sleep(600)
'''


def _compose_available() -> list[str]:
    return ["docker-compose"] if _v1_only() else ["docker", "compose"]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.parametrize("strategy, signum", [("ephemeral", signal.SIGINT), ("persistent", signal.SIGINT),
                                              ("ephemeral", signal.SIGTERM)], ids=["ephemeral-SIGINT",
                                                                                   "persistent-SIGINT",
                                                                                   "ephemeral-SIGTERM"])
def test_interrupt_stops_every_container(pytester, test_image, strategy, signum):
    """Ctrl-C (or SIGTERM) while an item runs in a container: pytest ends and no container of the run is left."""
    write_project(pytester, test_image, _compose_available(), test=BLOCKING_TEST)
    run_id = f"sig-{os.getpid()}-{strategy}-{int(signum)}"
    env = {**os.environ, "PYTHONPATH": str(PLUGIN_SOURCE), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--lem-campaign", "campaign.yaml", "--lem-run-id", run_id,
                             "--lem-container-strategy", strategy, "-p", "no:cacheprovider", "-k", "bs1"],
                            cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: list((pytester.path / "lem-results").glob("*/*/started-*")) or proc.poll() is not None,
                  240, "the item to start in its container")
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert _project_containers(run_id), "the item's container should be running"
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
    # right away: nothing of the run is left running (the compose client is not left re-parented either)
    assert _project_containers(run_id) == [], output[-3000:]
    (entry,) = [e for e in manifest(pytester, "dock")["entries"].values() if "bs1" in e["item_id"]]
    assert entry["status"] in ("pending", "interrupted") and not results(pytester, "dock")  # --lem-resume reruns it


def test_image_removed_after_the_preflight_is_never_pulled_or_built(pytester, test_image):
    """The image vanishes between the preflight and the item: the item errors clearly; nothing is pulled or built."""
    gone = "lem-test-gone:1"
    assert _docker("tag", test_image, gone).returncode == 0
    write_project(pytester, gone, _compose_available())
    pytester.makeconftest(pytester.path.joinpath("conftest.py").read_text() + textwrap.dedent(f"""
        import subprocess


        def pytest_collection_finish(session):  # after the dispatch preflight (tryfirst): the image goes away
            subprocess.run(["docker", "rmi", "{gone}"], check=True, capture_output=True)
        """))
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-k", "bs1", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*image {gone} is gone (removed after the preflight); dispatch never pulls or builds*"])
    assert gone not in _docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()


GPU_RESERVATION = """\
deploy:
  resources:
    reservations:
      devices:
        - driver: nvidia
          count: all
          capabilities: [gpu]
"""


def test_gpu_service_without_nvidia_runtime_stops_before_the_campaign(pytester, test_image):
    info = json.loads(_docker("info", "--format", "{{json .Runtimes}}").stdout)
    if "nvidia" in info:
        pytest.skip("this daemon has the NVIDIA runtime")
    write_project(pytester, test_image, _compose_available(), service_extra=GPU_RESERVATION)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: llenergy: docker dispatch cannot start:",
                                 "  service 'transformers' reserves NVIDIA GPUs, but the daemon has no NVIDIA runtime "
                                 "and no CDI GPU devices (runtimes: *runc*): install nvidia-container-toolkit*"])


def test_compose_failure_is_explained(pytester, test_image, tmp_path):
    """What compose prints when the NVIDIA runtime is missing becomes a message that says so (compose v2 exits 1)."""
    from pytest_llenergy.dispatch import (
        ContainerDispatcher,
        DispatchSettings,
        ItemCommand,
        PathMap,
        route_gpus,
    )

    write_project(pytester, test_image, _compose_available(), service_extra=GPU_RESERVATION)
    settings = DispatchSettings(compose_file=pytester.path / "compose.yaml", project=f"lem-explain-{os.getpid()}",
                                paths=PathMap(pytester.path, "/workspace", pytester.path / "lem-results", "/results"),
                                compose_command=_compose_available(), uid=_container_user(), gid=_container_user())
    dispatcher = ContainerDispatcher(settings)
    pre = dispatcher.preflight(["transformers"])
    assert "reserves NVIDIA GPUs" in (pre.problem("transformers") or "") or "nvidia" in json.loads(
        _docker("info", "--format", "{{json .Runtimes}}").stdout)
    command = ItemCommand(nodeid="test_suite.py::x", campaign="/workspace/campaign.yaml", run_id="r", seed=1,
                          seed_drawn=False, cycles=1, order="interleaved", results_dir="/results",
                          report_path="/results/r.json", pytest=(sys.executable, "-m", "pytest"))
    run = dispatcher.run_item("transformers", command, route_gpus(None), "explain")  # as if the preflight had passed
    dispatcher.close()
    assert run.returncode != 0
    assert run.hint is not None and run.hint.startswith("the NVIDIA container runtime is missing or failed"), run.output
    assert "could not select device driver" in run.hint


def test_a_search_races_in_containers(pytester, test_image):
    """Each item runs in the container, which decides from the shared run directory whether the race dropped
    its configuration: dropped configurations stop running, every result lands on the host, and the answer names
    the pick."""
    write_project(pytester, test_image, _compose_available(), test=SEARCH_TEST)
    pytester.makeconftest(SLEEPY_BACKEND_CONFTEST)
    campaign = (pytester.path / "campaign.yaml").read_text().replace("grid:\n  shared: {workload.batch_size: [1, 2]}",
                                                                      "grid:\n  shared: {workload.batch_size: [1, 2, 4]}")
    assert "[1, 2, 4]" in campaign
    campaign += SEARCH_CAMPAIGN
    (pytester.path / "campaign.yaml").write_text(campaign)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-container-strategy", "persistent", "-rs",
                                "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*search: racing 3 configurations for at most 5 rounds*",
                                 "SKIPPED * search: dropped after round *: worse than *"])
    found = results(pytester, "dock")
    ran: dict[str, list[int]] = {}
    for stored in found.values():
        assert stored["status"] == "passed" and stored["container"]["image"] == test_image
        ran.setdefault(stored["experiment_id"], []).append(stored["cycle"])
    summary = json.loads(next((pytester.path / "lem-results" / "dock").glob("*/summary.json")).read_text())
    search = summary["search"]
    drops = {d["config"]: d["round"] for d in search["dropped"]}
    assert any("bs1" in config for config in drops), search  # three times the energy per token: it leaves
    assert {c: sorted(v) for c, v in ran.items()} == expected_rounds(search, ran), search  # every config: round 1 on
    assert len(found) < 3 * 5 and "bs1" not in search["pick"]
