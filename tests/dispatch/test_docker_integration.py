"""Container dispatch against a real Docker daemon (marker ``docker``; skipped with the reason without one).

``scripts/ci_docker.sh`` starts a private daemon (no registry is needed) and runs these tests.
The test image is made locally with ``docker import``: a nearly empty root filesystem whose
compose service bind-mounts this machine's Python environment and the plugin's source read-only,
so the container runs the very pytest-llenergy under test. A conftest in the test project
replaces the backend session with a fake one, so no model or torch is needed in the container.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

import pytest_llenergy
from pytest_llenergy.dispatch import DispatchError, daemon_version, image_info

from .conftest import FAILING_TEST, manifest, results

pytestmark = [pytest.mark.docker, pytest.mark.requires("docker")]

PLUGIN_SOURCE = Path(pytest_llenergy.__file__).resolve().parent.parent


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def daemon() -> str:
    try:
        return daemon_version(env=dict(os.environ))
    except DispatchError as exc:
        pytest.skip(f"no Docker daemon: {exc}; scripts/ci_docker.sh starts a private one")


def _rootfs_tar() -> bytes:
    """A root filesystem with mount points only: /usr, Python and the plugin come from the host."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, kind: bytes = tarfile.DIRTYPE, mode: int = 0o755, link: str = "", data: bytes = b"") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, 0, link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if data else None)

        for directory in ("usr", "etc", "proc", "sys", "dev", "root", "sbin", "var", "workspace", "results"):
            add(directory)
        add("tmp", mode=0o1777)
        for link in ("bin", "lib", "lib64"):
            add(link, tarfile.SYMTYPE, link=f"usr/{link}")
        add("etc/passwd", tarfile.REGTYPE, 0o644, data=b"root:x:0:0:root:/root:/bin/sh\n")
        add("etc/group", tarfile.REGTYPE, 0o644, data=b"root:x:0:\n")
    return buf.getvalue()


@pytest.fixture(scope="session")
def test_image(daemon: str) -> str:
    data = _rootfs_tar()
    image = f"lem-test-python:{hashlib.sha256(data).hexdigest()[:12]}"
    if image_info(image, env=dict(os.environ)) is None:
        proc = subprocess.run(["docker", "import", "-c", f"LABEL org.llenergy.version={pytest_llenergy.__version__}",
                               "-", image], input=data, capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
    return image


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


def write_project(pytester: pytest.Pytester, image: str, compose_command: list[str], *,
                  pytest_command: list[str] | None = None) -> None:
    from campaigns import FAKE_SESSION_CONFTEST

    pytester.makeconftest(FAKE_SESSION_CONFTEST)
    pytester.makepyfile(test_suite=FAILING_TEST)
    volumes = "\n".join(f"      - {m}" for m in [*_mounts(), "${LEM_PROJECT_DIR}:/workspace",
                                                 "${LEM_RESULTS_DIR}:/results"])
    (pytester.path / "compose.yaml").write_text(textwrap.dedent("""
        services:
          transformers:
            image: {image}
            user: "${{PUID:-0}}:${{PGID:-0}}"
            network_mode: none
            init: true
            working_dir: /workspace
            command: ["sleep", "infinity"]
            env_file: [secrets.env]
            environment:
              HOME: /tmp
              PYTHONDONTWRITEBYTECODE: "1"
              NVIDIA_VISIBLE_DEVICES: "${{NVIDIA_VISIBLE_DEVICES:-all}}"
            volumes:
        """).format(image=image) + volumes + "\n")
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


def _run_dir(result: pytest.RunResult) -> Path:
    line = next(line for line in result.outlines if line.startswith("llenergy: results -> "))
    return Path(line.split(" -> ", 1)[1])


def _project_containers(run_id: str) -> list[str]:
    project = "lem-" + re.sub(r"[^a-z0-9_-]+", "-", run_id.lower())
    proc = _docker("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}")
    return proc.stdout.split()


@pytest.mark.parametrize("strategy", ["ephemeral", "persistent"])
@pytest.mark.parametrize("compose_command", _compose_flavours())
def test_two_item_campaign_in_real_containers(pytester, test_image, compose_command, strategy, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    write_project(pytester, test_image, compose_command)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-container-strategy", strategy,
                                "-v", "-p", "no:cacheprovider")
    # the host items follow the containers' outcomes: bs1 passes, bs2 fails (with the container's output)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*docker {strategy}, service transformers, image {test_image}, container *",
                                 "*AssertionError: batch size 2 fails on purpose*",
                                 "*container output (last 60 lines)*"])
    run_dir = _run_dir(result)
    run_id = run_dir.name
    # results land in the host's run directory, with the controller's ids, owned by the host user
    found = results(pytester, "dock")
    assert sorted(found) == ["c1-transformers-gpt2-bs1-fp32-4476b885", "c1-transformers-gpt2-bs2-fp32-b5a00f5e"]
    assert {r["run_id"] for r in found.values()} == {run_id}
    assert [found[k]["status"] for k in sorted(found)] == ["passed", "failed"]
    for path in (run_dir / "experiments").glob("*.json"):
        assert path.stat().st_uid == os.getuid()
    entries = manifest(pytester, "dock")["entries"]
    assert sorted(e["status"] for e in entries.values()) == ["failed", "passed"]
    # nothing left behind: --rm, or `down` at session end
    assert _project_containers(run_id) == []
    if strategy == "persistent":
        result.stdout.fnmatch_lines(["llenergy: docker: brought persistent containers down (transformers)"])


def test_image_missing_stops_before_the_campaign(pytester, daemon):
    write_project(pytester, "lem-test-never-built:0", ["docker-compose"] if _v1_only() else ["docker", "compose"])
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*image lem-test-never-built:0 for service 'transformers' is not built; build it with:",
                                 "*-f compose.yaml --env-file .env build transformers"])


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
