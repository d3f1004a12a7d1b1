"""Command construction: compose detection and commands, the container's pytest line, path mapping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_llenergy.dispatch import (
    Completed,
    ComposeCommand,
    ComposeProject,
    DispatchError,
    ItemCommand,
    PathMap,
    container_name,
    describe_exit,
    detect_compose,
    forwarded_options,
    project_name,
)


class ScriptedRunner:
    """Answers commands from a table of argv prefixes; records every call."""

    def __init__(self, answers: dict[tuple[str, ...], Completed | tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv, *, env=None, timeout=None, merge_output=False, cwd=None) -> Completed:
        self.calls.append(list(argv))
        for prefix, answer in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                if isinstance(answer, Completed):
                    return answer
                code, out, err = answer
                return Completed(tuple(argv), code, out, err)
        return Completed(tuple(argv), 127, "", f"{argv[0]}: not found", missing=True)


V2 = ComposeCommand(("docker", "compose"), "2.40.3")
V1 = ComposeCommand(("docker-compose",), "1.29.2")


class TestDetect:
    def test_v2_first(self):
        runner = ScriptedRunner({("docker", "compose", "version"): (0, "2.40.3\n", ""),
                                 ("docker-compose", "version"): (0, "1.29.2\n", "")})
        found = detect_compose(runner)
        assert found == V2 and found.major == 2 and found.label == "docker compose v2.40.3"

    def test_v1_when_no_plugin(self):
        runner = ScriptedRunner({("docker", "compose", "version"): (1, "", "docker: unknown command: docker compose"),
                                 ("docker-compose", "version"): (0, "1.29.2, build unknown\n", "")})
        found = detect_compose(runner)
        assert found.argv == ("docker-compose",) and found.major == 1

    def test_standalone_v2_binary_counts_as_v2(self):
        runner = ScriptedRunner({("docker", "compose", "version"): (1, "", "unknown command"),
                                 ("docker-compose", "version"): (0, "v2.27.0\n", "")})
        assert detect_compose(runner).major == 2

    def test_neither(self):
        runner = ScriptedRunner({("docker", "compose", "version"): (1, "", "docker: unknown command: docker compose")})
        with pytest.raises(DispatchError) as info:
            detect_compose(runner)
        message = str(info.value)
        assert "neither `docker compose` (v2) nor `docker-compose` (v1) works" in message
        assert "unknown command" in message and "docker-compose: not found" in message
        assert "Install the compose plugin" in message

    def test_configured_command_must_work(self):
        runner = ScriptedRunner({("podman-compose", "version"): (1, "", "boom")})
        with pytest.raises(DispatchError, match=r"compose command podman-compose \(dispatch.compose_command\) does not work"):
            detect_compose(runner, configured=["podman-compose"])


class TestComposeCommands:
    @pytest.fixture(params=[V2, V1], ids=["v2", "v1"])
    def project(self, request, tmp_path):
        return ComposeProject(request.param, tmp_path / "docker" / "compose.yaml", "lem-run1", tmp_path / "docker" / ".env")

    def test_run_is_ephemeral(self, project, tmp_path):
        argv = project.run("vllm", ["pytest", "t.py::x[a]"], env={"CUDA_VISIBLE_DEVICES": "0"}, workdir="/workspace",
                           name="lem-run1-c1-x-abc")
        prefix = [*project.compose.argv, "-f", str(tmp_path / "docker/compose.yaml"), "-p", "lem-run1",
                  "--env-file", str(tmp_path / "docker/.env")]
        no_pull = ["--pull", "never"] if project.compose.major >= 2 else []  # v1 has no such flag
        # not --rm: the dispatcher inspects the container that ran the item (its image id), then removes it
        assert argv == prefix + ["run", "-T", "--no-deps", *no_pull, "--name", "lem-run1-c1-x-abc", "-w",
                                 "/workspace", "-e", "CUDA_VISIBLE_DEVICES=0", "vllm", "pytest", "t.py::x[a]"]

    def test_the_label_file_follows_the_compose_file(self, project, tmp_path):
        from dataclasses import replace

        labelled = replace(project, label_file=tmp_path / "labels.yaml")
        assert labelled.base()[:len(project.compose.argv) + 4] == [
            *project.compose.argv, "-f", str(tmp_path / "docker/compose.yaml"), "-f", str(tmp_path / "labels.yaml")]
        assert str(tmp_path / "labels.yaml") not in labelled.build_hint(["vllm"])  # building needs no labels

    def test_secrets_go_by_name_only(self, project):
        argv = project.run("vllm", ["pytest"], env={"HF_TOKEN": None, "A": "1"}, workdir="/w", name="n")
        assert argv[argv.index("HF_TOKEN") - 1] == "-e" and "A=1" in argv
        assert not any(a.startswith("HF_TOKEN=") for a in argv)

    def test_persistent_commands(self, project):
        base = project.base()
        no_pull = ["--pull", "never"] if project.compose.major >= 2 else []
        assert project.up(["vllm"]) == base + ["up", "-d", "--no-build", *no_pull, "--no-deps", "vllm"]
        assert project.up(["vllm"], recreate=True)[-2:] == ["--force-recreate", "vllm"]
        assert project.exec("vllm", ["pytest", "x"], env={"A": "1"}, workdir="/w") == base + [
            "exec", "-T", "-w", "/w", "-e", "A=1", "vllm", "pytest", "x"]
        assert project.down(5) == base + ["down", "--remove-orphans", "-t", "5"]
        assert project.ps_quiet("vllm") == base + ["ps", "-q", "vllm"]

    def test_build_hint_is_the_exact_command(self, project, tmp_path):
        hint = project.build_hint(["transformers"], cwd=tmp_path)
        assert hint == " ".join([*project.compose.argv, "-f docker/compose.yaml --env-file docker/.env build transformers"])
        assert project.build_hint(["x"], cwd=Path("/elsewhere")).startswith(
            " ".join(project.compose.argv) + f" -f {tmp_path}/docker/compose.yaml")


def test_names_are_valid_for_docker():
    assert project_name("lem", "2026-11-28T20-49-31-bcc8", "gw1") == "lem-2026-11-28t20-49-31-bcc8-gw1"
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", project_name("LEM", "a b/c"))
    name = container_name("lem-run", "c1-transformers-gpt2-bs8-bf16-3f9a1c", "ab12cd")
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name)
    assert len(container_name("x" * 300)) <= 120


def test_exit_descriptions():
    assert describe_exit(125) == "exit 125: docker could not create or start the container"
    assert "not found in the container" in describe_exit(127)
    assert describe_exit(1) == "exit 1: tests failed"
    assert describe_exit(1, pytest_ran=False) == "exit 1"
    assert describe_exit(-9) == "killed by signal 9"


class TestItemCommand:
    def test_same_ids_as_the_controller(self):
        command = ItemCommand(nodeid="suite/test_x.py::test_inference[c2-vllm-a]", campaign="/workspace/grid.yaml",
                              run_id="2026-01-01T00-00-00-abcd", seed=42, seed_drawn=True, cycles=3, order="shuffled",
                              results_dir="/results", report_path="/results/grid/r/.dispatch/k.json",
                              gap={"kind": "fixed", "waited_s": 1.5}, forwarded=("--lem-energy-source=replay",),
                              overrides=("lem_gap_experiments=0",), pytest=("python", "-m", "pytest"))
        argv = command.argv()
        assert argv[:4] == ["python", "-m", "pytest", "suite/test_x.py::test_inference[c2-vllm-a]"]
        for expected in ("--lem-campaign=/workspace/grid.yaml", "--lem-run-id=2026-01-01T00-00-00-abcd",
                         "--lem-seed=42", "--lem-seed-drawn", "--lem-cycles=3", "--lem-order=shuffled",
                         "--lem-results-dir=/results", "--lem-dispatched", "--lem-dispatch=local",
                         "--lem-dispatch-report=/results/grid/r/.dispatch/k.json",
                         '--lem-dispatch-gap={"kind":"fixed","waited_s":1.5}', "--lem-energy-source=replay"):
            assert expected in argv
        assert argv[argv.index("-o") + 1] == "lem_gap_experiments=0"
        # the container reads the host's pytest cache (baselines) but never writes it
        assert ["-p", "no:lfplugin", "-p", "no:nfplugin", "-p", "no:stepwise"] == argv[argv.index("no:lfplugin") - 1:][:6]
        assert "no:cacheprovider" not in argv

    def test_no_cache_on_the_host_none_in_the_container(self):
        command = ItemCommand(nodeid="t.py::x", campaign="/w/c.yaml", run_id="r", seed=1, seed_drawn=False, cycles=1,
                              order="interleaved", results_dir="/results", report_path="/results/k.json", cache=False)
        argv = command.argv()
        assert argv[argv.index("no:cacheprovider") - 1] == "-p" and "no:lfplugin" not in argv

    def test_serve_collects_every_item_once(self):
        command = ItemCommand(nodeid="t.py::x[1]", campaign="/w/c.yaml", run_id="r", seed=1, seed_drawn=False, cycles=1,
                              order="interleaved", results_dir="/results", report_path="/results/k.json",
                              gap={"kind": "none"})
        argv = command.serve_argv(["t.py::x[1]", "t.py::x[2]"])
        assert argv[:3] == ["pytest", "t.py::x[1]", "t.py::x[2]"] and "--lem-dispatch-serve" in argv
        assert not any(a.startswith(("--lem-dispatch-report", "--lem-dispatch-gap")) for a in argv)  # sent per item

    def test_forwarded_options(self):
        options = {"lem_energy_source": "replay", "lem_force_cold_start": True, "lem_gap_max_wait": None,
                   "lem_resume": True, "lem_run_id": "x", "lem_compare": "main", "lem_shard": "1/2",
                   "lem_markers": ["a", "b"], "verbose": 2, "lem_off": False}
        assert forwarded_options(options) == ["--lem-energy-source=replay", "--lem-force-cold-start",
                                              "--lem-markers=a", "--lem-markers=b"]


class TestPathMap:
    def test_most_specific_mount_wins(self, tmp_path):
        paths = PathMap(tmp_path, "/workspace", tmp_path / "lem-results", "/results")
        assert paths.to_container(tmp_path / "campaigns" / "grid.yaml") == "/workspace/campaigns/grid.yaml"
        assert paths.to_container(tmp_path / "lem-results" / "c" / "r") == "/results/c/r"
        assert paths.to_container(tmp_path) == "/workspace"

    def test_results_outside_the_project(self, tmp_path):
        paths = PathMap(tmp_path / "proj", "/workspace", tmp_path / "big-disk", "/results")
        assert paths.to_container(tmp_path / "big-disk" / "x.json") == "/results/x.json"

    def test_outside_every_mount(self, tmp_path):
        paths = PathMap(tmp_path / "proj", "/workspace", tmp_path / "proj" / "r", "/results")
        with pytest.raises(DispatchError, match="is not inside the directories mounted into the containers"):
            paths.to_container(tmp_path / "elsewhere" / "grid.yaml")
