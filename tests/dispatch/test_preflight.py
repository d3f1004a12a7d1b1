"""Preflight checks (GPU runtime, driver vs CUDA, container user, results ownership) and docker's errors."""

from __future__ import annotations

import os

import pytest

from pytest_llenergy.dispatch.docker import DaemonInfo, ImageInfo
from pytest_llenergy.dispatch.errors import explain_output
from pytest_llenergy.dispatch.preflight import (
    container_user,
    driver_problem,
    gpu_runtime_problem,
    prepare_writable,
    wants_gpu,
)

GPU_SERVICE = {"deploy": {"resources": {"reservations": {"devices": [{"driver": "nvidia", "capabilities": ["gpu"]}]}}}}


class TestGpu:
    def test_which_services_want_gpus(self):
        assert wants_gpu(GPU_SERVICE)
        assert wants_gpu({"runtime": "nvidia"}) and wants_gpu({"gpus": "all"})
        assert not wants_gpu({"image": "x"})

    def test_runtime_or_cdi_is_enough(self):
        assert gpu_runtime_problem("vllm", DaemonInfo(("nvidia", "runc"))) is None
        assert gpu_runtime_problem("vllm", DaemonInfo(("runc",), cdi_devices=("nvidia.com/gpu=all",))) is None
        problem = gpu_runtime_problem("vllm", DaemonInfo(("runc",)))
        assert "service 'vllm' reserves NVIDIA GPUs" in problem and "runtimes: runc" in problem
        assert "nvidia-ctk runtime configure" in problem

    @pytest.mark.parametrize("cuda, driver, ok", [
        ("12.8.1", "550.54.15", True), ("12.8.1", "520.61.05", False), ("13.0", "575.57.08", False),
        ("13.0", "580.65.06", True), ("11.8", "470.82.01", True), (None, "400.0", True), ("13.0", None, True),
    ])
    def test_driver_against_the_images_cuda(self, cuda, driver, ok):
        image = ImageInfo("img", "sha256:1", env={"CUDA_VERSION": cuda} if cuda else {})
        problem = driver_problem("vllm", image, driver)
        assert (problem is None) == ok
        if not ok:
            assert f"needs CUDA {cuda}" in problem and f"this host has {driver}" in problem

    def test_cuda_version_from_label_or_requirement(self):
        assert ImageInfo("i", "x", labels={"org.llenergy.cuda": "13.0"}).cuda_version == "13.0"
        assert ImageInfo("i", "x", env={"NVIDIA_REQUIRE_CUDA": "cuda>=12.4 brand=tesla,driver>=470"}).cuda_version == "12.4"
        assert ImageInfo("i", "x").cuda_version is None


class TestUser:
    def test_configured_wins(self, tmp_path):
        assert container_user("2000:3000", 1234, 1234, {}, tmp_path) == (2000, 3000)
        assert container_user("0:0", 1234, 1234, {}, tmp_path) == (0, 0)  # root only when asked for
        assert container_user("2000", 0, 0, {}, tmp_path) == (2000, 2000)

    def test_a_normal_user_is_itself(self, tmp_path):
        assert container_user(None, 1234, 99, {"SUDO_UID": "5"}, tmp_path) == (1234, 99)

    def test_root_is_never_passed_on(self, tmp_path):
        assert container_user(None, 0, 0, {"SUDO_UID": "1500", "SUDO_GID": "1600"}, tmp_path) == (1500, 1600)
        os.chown(tmp_path, 1700, 1800)
        assert container_user(None, 0, 0, {}, tmp_path) == (1700, 1800)  # the project's owner
        os.chown(tmp_path, 0, 0)
        assert container_user(None, 0, 0, {"SUDO_UID": "0"}, tmp_path) == (1000, 1000)


class TestWritable:
    @pytest.mark.skipif(os.getuid() != 0, reason="handing directories to another user needs root")
    def test_root_hands_the_run_directory_to_the_container_user(self, tmp_path):
        run = tmp_path / "run"
        (run / "experiments").mkdir(parents=True)
        assert prepare_writable(run, 1000, 1000) is None
        assert {(p.stat().st_uid, p.stat().st_gid) for p in (run, run / "experiments")} == {(1000, 1000)}

    def test_a_user_only_checks(self, tmp_path):
        run = tmp_path / "run"
        run.mkdir(mode=0o755)
        owner = run.stat().st_uid
        assert prepare_writable(run, owner, 0, host_uid=4321) is None
        problem = prepare_writable(run, owner + 1, 4242, host_uid=4321)
        assert f"is not writable by the container's user {owner + 1}:4242" in problem
        assert f"chown -R {owner + 1}:4242 {run}" in problem
        run.chmod(0o777)
        assert prepare_writable(run, owner + 1, 4242, host_uid=4321) is None


@pytest.mark.parametrize("output, meaning", [
    ('Error response from daemon: could not select device driver "nvidia" with capabilities: [[gpu]]',
     "NVIDIA container runtime is missing"),
    ("Error: No such image: llenergy/vllm:1", "not on this machine"),
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
     "daemon is not reachable"),
    ("PermissionError: [Errno 13] Permission denied: '/results/x/experiments/a.json'", "not writable by the container"),
    ("nvidia-container-cli: requirement error: unsatisfied condition: cuda>=13.0", "NVIDIA container runtime"),
])
def test_docker_errors_are_explained(output, meaning):
    explained = explain_output("some line\n" + output + "\n")
    assert meaning in explained and output.strip()[:40] in explained


def test_unknown_output_is_not_explained():
    assert explain_output("AssertionError: batch size 2 fails on purpose") is None


def test_project_must_be_readable_by_the_container_user(tmp_path):
    from pytest_llenergy.dispatch.preflight import readable_problem

    project = tmp_path / "project"
    project.mkdir(mode=0o700)
    owner, group = project.stat().st_uid, project.stat().st_gid
    problem = readable_problem(project, owner + 4242, group + 4242)
    assert f"project directory {project} (drwx------, owner {owner}:{group}) is not readable" in problem
    assert f"chmod o+rx {project}" in problem
    assert readable_problem(project, owner, group) is None
    project.chmod(0o705)  # its parents (private here) do not matter: the project is bind-mounted
    assert readable_problem(project, owner + 4242, group + 4242) is None
