"""What an operator of a shared GPU host relies on, against a real Docker daemon (marker ``docker``).

One pass of the preflight names every problem; an unwritable results directory is one line; each
item records the image its own container ran; a dropped terminal (SIGHUP) or a killed pytest leaves
nothing running for long (the next run of the project sweeps it); a second Ctrl-C prints one line.
The project and image are those of ``test_docker_integration.py``.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from .conftest import FAILING_TEST, manifest, results
from .test_docker_integration import (
    BLOCKING_TEST,
    GPU_RESERVATION,
    PLUGIN_SOURCE,
    _compose_available,
    _docker,
    _project_containers,
    _wait_for,
    write_project,
)

pytestmark = [pytest.mark.docker, pytest.mark.requires("docker")]


def _no_nvidia_runtime() -> None:
    if "nvidia" in json.loads(_docker("info", "--format", "{{json .Runtimes}}").stdout):
        pytest.skip("this daemon has the NVIDIA runtime")


def _usage_lines(result: pytest.RunResult) -> list[str]:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text and "Traceback" not in text, text[-3000:]
    return [line for line in result.stderr.lines if line.strip()]


def test_unwritable_results_directory_is_one_line(pytester, test_image):
    write_project(pytester, test_image, _compose_available())
    (pytester.path / "blocked").write_text("a file where the results directory should be\n")
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-results-dir", "blocked/results",
                                "-p", "no:cacheprovider")
    (line,) = _usage_lines(result)
    assert line.startswith("ERROR: llenergy: results directory") and "blocked" in line and "Not a directory" in line


def test_preflight_reports_every_problem_at_once(pytester, daemon):
    """Image missing, no NVIDIA runtime, a project the containers' user cannot read, results unwritable:
    four lines in one pass, before anything is run; nothing pulled, nothing created."""
    _no_nvidia_runtime()
    write_project(pytester, "lem-test-never-built:0", _compose_available(), service_extra=GPU_RESERVATION)
    campaign = pytester.path / "campaign.yaml"
    campaign.write_text(campaign.read_text() + '  user: "4242:4242"\n')
    (pytester.path / "blocked").write_text("not a directory\n")
    pytester.path.chmod(0o700)  # the containers' user cannot read the project
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-results-dir", "blocked/results",
                                "-p", "no:cacheprovider")
    lines = _usage_lines(result)
    assert lines[0] == "ERROR: llenergy: docker dispatch cannot start:"
    found = {line.split()[0]: line for line in lines[1:]}
    assert len(lines) == 5 and set(found) == {"results", "image", "service", "project"}, lines
    assert "blocked" in found["results"]
    assert "lem-test-never-built:0 for service 'transformers' is not on this machine" in found["image"]
    assert "reserves NVIDIA GPUs, but the daemon has no NVIDIA runtime" in found["service"]
    assert "not readable by the container's user 4242:4242" in found["project"]
    assert "lem-test-never-built" not in _docker("image", "ls", "--format", "{{.Repository}}").stdout


def test_preflight_without_a_daemon_still_checks_the_host(pytester, test_image, monkeypatch, tmp_path):
    write_project(pytester, test_image, _compose_available())
    (pytester.path / "blocked").write_text("not a directory\n")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-results-dir", "blocked/results",
                                "-p", "no:cacheprovider")
    lines = _usage_lines(result)
    assert lines[0] == "ERROR: llenergy: docker dispatch cannot start:"
    assert lines[1].lstrip().startswith("results directory") and "no-daemon.sock" in lines[2], lines


RETAG_CONFTEST = """

import os
import subprocess


def pytest_runtest_logfinish(nodeid, location):
    # on the host only (the containers are told their service): after bs1 the tag names another image
    if "bs1" in nodeid and not os.environ.get("LEM_CONTAINER_SERVICE"):
        subprocess.run(["docker", "tag", "{new}", "{tag}"], check=True, capture_output=True)
"""


def test_each_item_records_the_image_its_container_ran(pytester, test_image, tmp_path):
    """The tag moves to another image between the two items: each result has its own container's image id."""
    tag, new = "lem-test-retag:1", "lem-test-retag:new"
    old_id = json.loads(_docker("image", "inspect", "--format", "{{json .Id}}", test_image).stdout)
    assert _docker("tag", test_image, tag).returncode == 0
    source = _docker("create", "--network", "none", test_image, "/none").stdout.strip()
    made = _docker("commit", "--change", "LABEL org.llenergy.test=retagged", source, new)
    _docker("rm", "-f", source)
    assert made.returncode == 0, made.stderr
    new_id = json.loads(_docker("image", "inspect", "--format", "{{json .Id}}", new).stdout)
    assert new_id != old_id
    try:
        write_project(pytester, tag, _compose_available())
        pytester.makeconftest(pytester.path.joinpath("conftest.py").read_text()
                              + RETAG_CONFTEST.format(new=new, tag=tag))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1, failed=1)
        by_bs = {key.split("-bs")[1][0]: stored["container"]["image_id"] for key, stored in results(pytester, "dock").items()}
        assert by_bs == {"1": old_id, "2": new_id}
        entries = {e["item_id"].split("-bs")[1][0]: e["container"]["image_id"]
                   for e in manifest(pytester, "dock")["entries"].values()}
        assert entries == {"1": old_id, "2": new_id}
    finally:
        _docker("rmi", "-f", tag, new)


def _start(pytester: pytest.Pytester, run_id: str, strategy: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PLUGIN_SOURCE), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "pytest", "--lem-campaign", "campaign.yaml", "--lem-run-id", run_id,
                             "--lem-container-strategy", strategy, "-p", "no:cacheprovider", "-k", "bs1"],
                            cwd=pytester.path, env=env, **kwargs)


def _wait_started(pytester: pytest.Pytester, proc: subprocess.Popen, run_id: str,
                  meanwhile: Callable[[], None] = lambda: None) -> None:
    def started() -> bool:
        meanwhile()
        return bool(list((pytester.path / "lem-results").glob(f"*/{run_id}/started-*"))) or proc.poll() is not None

    _wait_for(started, 240, "the item to start in its container")
    assert proc.poll() is None, "pytest ended before its item started"
    assert _project_containers(run_id), "the item's container should be running"


def test_sighup_leaves_no_persistent_container(pytester, test_image):
    """The terminal closes (ssh dropped): SIGHUP, and writing to the terminal fails from then on."""
    write_project(pytester, test_image, _compose_available(), test=BLOCKING_TEST)
    run_id = f"hup-{os.getpid()}"
    controller, terminal = pty.openpty()
    proc = _start(pytester, run_id, "persistent", stdin=terminal, stdout=terminal, stderr=terminal,
                  start_new_session=True)
    os.close(terminal)
    os.set_blocking(controller, False)
    try:
        _wait_started(pytester, proc, run_id, lambda: _drain(controller))
        (container,) = _project_containers(run_id)
        labels = json.loads(_docker("inspect", "--format", "{{json .Config.Labels}}", container).stdout)
        assert labels["org.llenergy.project"] == str(pytester.path.resolve())
        assert labels["org.llenergy.owner"].split(":")[:2] == [socket.gethostname(), str(proc.pid)]
        os.close(controller)  # the terminal is gone
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _project_containers(run_id) == []


def _drain(fd: int) -> None:
    """Read what the terminal shows so far (so pytest never blocks writing to it)."""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:  # nothing more for now
        pass


def test_next_run_sweeps_what_a_killed_run_left(pytester, test_image):
    """pytest is SIGKILLed (nothing can stop its containers); the next run of the project removes them and says
    so, and leaves another project's container alone."""
    write_project(pytester, test_image, _compose_available(), test=BLOCKING_TEST)
    run_id = f"kill-{os.getpid()}"
    proc = _start(pytester, run_id, "persistent", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    other = _docker("create", "--network", "none", "--label", "org.llenergy.project=/another/project",
                    "--label", f"org.llenergy.owner={socket.gethostname()}:{proc.pid}:0", test_image, "/none").stdout.strip()
    try:
        _wait_started(pytester, proc, run_id)
        proc.kill()
        proc.wait(timeout=60)
        assert len(_project_containers(run_id)) == 1  # left running: `sleep infinity`
        pytester.makepyfile(test_suite=FAILING_TEST)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-k", "bs1", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["llenergy: docker: removed 1 container(s) left running by earlier runs of "
                                     "this project (their pytest ended without stopping them)"])
        assert _project_containers(run_id) == []
        assert _docker("inspect", other).returncode == 0  # not this project's
    finally:
        if proc.poll() is None:
            proc.kill()
        _docker("rm", "-f", other)


def test_double_ctrl_c_prints_one_line(pytester, test_image):
    """Ctrl-C, then Ctrl-C again while the containers are being stopped: one line, no traceback, none left."""
    write_project(pytester, test_image, _compose_available(), test=BLOCKING_TEST)
    run_id = f"int2-{os.getpid()}"
    proc = _start(pytester, run_id, "ephemeral", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    notice = "llenergy: stopping this run's containers; please wait, this is not interrupted again"
    try:
        _wait_started(pytester, proc, run_id)
        proc.send_signal(signal.SIGINT)
        # Ctrl-C again (and again) until pytest says it is still stopping them
        _wait_for(lambda: any(notice in line for line in lines) or proc.poll() is not None
                  or proc.send_signal(signal.SIGINT), 120, "the second Ctrl-C's line")
        proc.wait(timeout=180)
        reader.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
    assert output.count(notice) == 1 and "Traceback" not in output, output[-3000:]
    assert _project_containers(run_id) == []


def test_kept_containers_are_not_swept(pytester, test_image):
    """keep_containers: the run ends normally and keeps its container; the next run reports it, leaves it."""
    write_project(pytester, test_image, _compose_available())
    first = pytester.runpytest_subprocess("--lem-campaign", "campaign.yaml", "-k", "bs1", "--lem-run-id", f"keep-{os.getpid()}",
                               "--lem-container-strategy", "persistent", "--lem-keep-containers", "-p", "no:cacheprovider")
    first.assert_outcomes(passed=1)
    (kept,) = _project_containers(f"keep-{os.getpid()}")
    try:
        second = pytester.runpytest("--lem-campaign", "campaign.yaml", "-k", "bs1", "-p", "no:cacheprovider")
        second.assert_outcomes(passed=1)
        second.stdout.fnmatch_lines(["llenergy: docker: 1 container(s) kept by earlier runs of this project "
                                     "(keep_containers) are still there; remove them with: docker rm -f *"])
        assert _project_containers(f"keep-{os.getpid()}") == [kept]
    finally:
        _docker("rm", "-f", kept)
