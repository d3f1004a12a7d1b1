"""The three images build from the shipped Dockerfiles, with the documented command, against a real daemon.

No registry is reached: the base images named in ``pytest_llenergy/docker/.env`` are local stand-ins
(``docker import`` of a root filesystem made of the host's static busybox), tagged with the ``.env``
names, and the build runs with ``network: none`` (a test override file). The stand-in's ``python3``
is a stub that answers the engine's version check and ``pip list``, and records every ``pip install``
it is asked for, so the real ``install-plugin.sh`` runs end to end (holds, constraints, the ``lem``
user, ``/cache``) without a download. What is checked in each image: every COPY source arrived,
the plugin's source is there and no ``secrets.env`` is, the labels, and the user it runs as.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

import pytest_llenergy
from pytest_llenergy.dispatch.envfile import read_env_file

from .docker_fixtures import Rootfs

pytestmark = [pytest.mark.docker, pytest.mark.requires("docker")]

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "pytest_llenergy" / "docker"
BUSYBOX = shutil.which("busybox")
BASES = {"transformers": "PYTORCH_IMAGE", "vllm": "VLLM_IMAGE", "tensorrt": "TENSORRT_LLM_IMAGE"}
ENGINE = {"transformers": "torch", "vllm": "vllm", "tensorrt": "tensorrt_llm"}
APPLETS = ("sh", "cat", "chmod", "cp", "echo", "grep", "id", "ls", "mkdir", "mv", "printf", "rm", "sed", "touch",
           "tr", "env", "test", "[", "sort", "sleep")

# The stand-in's python3: records what it is asked, answers `pip list` with an engine and numpy to hold.
PYTHON_STUB = r"""#!/bin/sh
mkdir -p /var/log/stub
printf '%s\n' "$*" >> /var/log/stub/python3.log
case "$*" in
  "-m pip list --format=freeze") printf 'torch==2.99.0\nvllm==0.99.0\ntensorrt_llm==9.9.9\nnumpy==1.99.0\n' ;;
  "-m pip install"*)
    # what the real pip would read must exist: the plugin's source and both constraint files
    for need in /opt/pytest-llenergy/pyproject.toml /opt/pytest-llenergy/README.md \
                /opt/pytest-llenergy/pytest_llenergy/__init__.py /tmp/hold.txt /tmp/constraints.txt; do
      [ -f "$need" ] || { echo "stub pip: $need missing" >&2; exit 1; }
    done
    cp /tmp/hold.txt /var/log/stub/hold.txt
    cp /tmp/constraints.txt /var/log/stub/constraints.txt ;;
esac
exit 0
"""

# Debian's useradd as the production base images have it (a user and its own group), for busybox has none.
USERADD_STUB = r"""#!/bin/sh
uid=1000; home=/
while [ $# -gt 1 ]; do
  case "$1" in --uid) uid="$2"; shift 2 ;; --home-dir) home="$2"; shift 2 ;; *) shift ;; esac
done
! grep -q "^$1:" /etc/passwd || exit 9
echo "$1:x:$uid:$uid::$home:/bin/sh" >> /etc/passwd
echo "$1:x:$uid:" >> /etc/group
"""


def _docker(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def standin_rootfs() -> bytes:
    """busybox (static, from the host), its applets, a python3 stub and a useradd."""
    assert BUSYBOX is not None
    root = Rootfs()
    for directory in ("bin", "usr", "usr/bin", "usr/sbin", "usr/local", "usr/local/bin", "etc", "root", "var",
                      "var/log", "proc", "sys", "dev"):
        root.add(directory)
    root.add("tmp", mode=0o1777)
    root.add("bin/busybox", tarfile.REGTYPE, data=Path(BUSYBOX).read_bytes())
    for applet in APPLETS:
        root.add(f"bin/{applet}", tarfile.SYMTYPE, link="busybox")
    root.add("usr/bin/python3", tarfile.REGTYPE, data=PYTHON_STUB.encode())
    root.add("usr/sbin/useradd", tarfile.REGTYPE, data=USERADD_STUB.encode())
    root.add("etc/passwd", tarfile.REGTYPE, 0o644, data=b"root:x:0:0:root:/root:/bin/sh\n")
    root.add("etc/group", tarfile.REGTYPE, 0o644, data=b"root:x:0:\n")
    return root.tar()


@pytest.fixture(scope="module")
def base_images(daemon: str) -> dict[str, str]:
    """Each backend's base image, as .env names it, tagged onto the stand-in (a digest, when pinned, is dropped)."""
    if BUSYBOX is None:
        pytest.skip("busybox not installed (apt-get install busybox-static; scripts/ci_docker.sh installs it)")
    proc = subprocess.run(["docker", "import", "-", "lem-test-standin-base:1"], input=standin_rootfs(),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    pins = read_env_file(DOCKER / ".env")
    tags = {}
    for key in BASES.values():
        tags[key] = pins[key].split("@")[0]
        assert _docker("tag", "lem-test-standin-base:1", tags[key]).returncode == 0
    yield tags
    _docker("rmi", *tags.values(), "lem-test-standin-base:1")


def source_copy(dest: Path) -> Path:
    """What a fresh clone holds of the plugin's source (the build context), plus a secrets.env that must stay out."""
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copy(ROOT / "README.md", dest / "README.md")
    shutil.copy(ROOT / ".dockerignore", dest / ".dockerignore")  # for builders that read only this one (compose v1)
    shutil.copytree(ROOT / "pytest_llenergy", dest / "pytest_llenergy",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "secrets.env"))
    (dest / "pytest_llenergy" / "docker" / "secrets.env").write_text("HF_TOKEN=hf_must_never_reach_an_image\n")
    return dest / "pytest_llenergy" / "docker"


def clean_env(bases: dict[str, str]) -> dict[str, str]:
    names = set(read_env_file(DOCKER / ".env")) | {"PUID", "PGID", "NVIDIA_VISIBLE_DEVICES"}
    env = {k: v for k, v in os.environ.items() if k not in names and not k.startswith(("LEM_", "COMPOSE_"))}
    env.update(bases)  # the same names as .env's, without a digest (a pinned digest is a registry's)
    return env


def _run(image: str, *command: str) -> subprocess.CompletedProcess:
    return _docker("run", "--rm", "--network", "none", "--entrypoint", "", image, *command)


def _compose_params() -> list:
    params = []
    for argv, component in ((("docker", "compose"), "compose"), (("docker-compose",), "docker-compose")):
        try:
            works = subprocess.run([*argv, "version"], capture_output=True, timeout=30).returncode == 0
        except OSError:
            works = False
        marks = [pytest.mark.requires(component)]
        if not works:
            marks.append(pytest.mark.skip(reason=f"`{' '.join(argv)}` not installed (scripts/ci_docker.sh installs it)"))
        params.append(pytest.param(list(argv), id=component, marks=marks))
    return params


@pytest.mark.parametrize("compose", _compose_params())
def test_all_three_images_build_from_the_shipped_files(base_images, tmp_path, compose):
    """The documented build command; compose v2 builds with BuildKit (the Dockerfiles' own .dockerignore
    files), v1 with the classic builder (the root .dockerignore): neither sends a secrets file."""
    docker_dir = source_copy(tmp_path)
    override = tmp_path / "build-offline.yaml"  # the test's only addition: no network during the build
    override.write_text(yaml.safe_dump({"services": {b: {"build": {"network": "none"}} for b in BASES}}))
    files = ["-f", str(docker_dir / "compose.yaml"), "-f", str(docker_dir / "compose.build.yaml")]
    env = clean_env(base_images)
    config = subprocess.run([*compose, *files, "config"], capture_output=True, text=True, env=env, timeout=120)
    assert config.returncode == 0, config.stderr
    images = {name: service["image"] for name, service in yaml.safe_load(config.stdout)["services"].items()}
    progress = ["--progress", "plain"] if compose == ["docker", "compose"] else []
    build = subprocess.run([*compose, *files, "-f", str(override), *progress, "build", *BASES],
                           capture_output=True, text=True, env=env, timeout=600)
    try:
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
        pins = read_env_file(DOCKER / ".env")
        for backend in BASES:
            _check_image(backend, images[backend], pins)
    finally:
        _docker("rmi", "-f", *images.values())


def _check_image(backend: str, image: str, pins: dict[str, str]) -> None:
    info = json.loads(_docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert info["User"] == "1000:1000", f"{backend}: runs as {info['User']!r}"
    labels = info["Labels"]
    assert labels["org.llenergy.version"] == pins["LEM_VERSION"] == pytest_llenergy.__version__
    assert labels["org.llenergy.backend"] == backend
    assert info["Cmd"] == ["sleep", "infinity"] and info["WorkingDir"] == "/workspace"
    # every COPY source arrived; the plugin's source is complete and the secrets file stayed out
    listing = _run(image, "ls", "/opt/pytest-llenergy", "/opt/pytest-llenergy/pytest_llenergy/docker",
                   "/usr/local/bin/lem-install-plugin")
    assert listing.returncode == 0, listing.stderr
    for name in ("pyproject.toml", "README.md", "constraints.txt", "pytest_llenergy", "compose.yaml",
                 "install-plugin.sh", "/usr/local/bin/lem-install-plugin"):
        assert name in listing.stdout.split(), f"{backend}: {name} missing in {listing.stdout}"
    assert "secrets.env" not in listing.stdout
    constraints = _run(image, "cat", "/opt/pytest-llenergy/constraints.txt").stdout
    assert constraints == (DOCKER / "constraints.txt").read_text()
    # the install script ran: the engine check with .env's version, pip holding the image's engine
    log = _run(image, "cat", "/var/log/stub/python3.log").stdout.splitlines()
    version = pins[{"transformers": "TORCH_VERSION", "vllm": "VLLM_VERSION", "tensorrt": "TENSORRT_LLM_VERSION"}[backend]]
    assert any(line.startswith("-c ") and ENGINE[backend] in line and version in line for line in log), log
    (install,) = [line for line in log if line.startswith("-m pip install")]
    assert "-c /tmp/hold.txt -c /tmp/constraints.txt" in install and install.endswith("/opt/pytest-llenergy[nvml]")
    assert f"nvidia-ml-py=={pins['NVIDIA_ML_PY_VERSION']}" in install
    if backend == "transformers":
        assert f"transformers=={pins['TRANSFORMERS_VERSION']}" in install
    held = _run(image, "cat", "/var/log/stub/hold.txt").stdout.split()
    assert "numpy==1.99.0" in held and {"transformers": "torch==2.99.0", "vllm": "vllm==0.99.0",
                                        "tensorrt": "tensorrt_llm==9.9.9"}[backend] in held
    assert not [line for line in _run(image, "cat", "/var/log/stub/constraints.txt").stdout.split()
                if line.lower().startswith("numpy==")], "the image's numpy must win over constraints.txt"
    # the user: uid 1000 named lem, whose HOME (/cache/home), the model cache and the compile cache are writable
    who = _run(image, "sh", "-c", "id -u; id -un; touch /cache/home/x /cache/huggingface/y /cache/torchinductor/z"
                                  " && echo writable")
    assert who.stdout.split() == ["1000", "lem", "writable"], who.stdout + who.stderr
