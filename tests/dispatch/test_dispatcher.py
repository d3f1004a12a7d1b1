"""The dispatcher against a scripted runner: preflight, image checks, ephemeral/persistent runs, failures."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import yaml

import pytest_llenergy
from pytest_llenergy.dispatch import (
    Completed,
    ContainerDispatcher,
    DispatchError,
    DispatchSettings,
    ItemCommand,
    PathMap,
    daemon_version,
    image_info,
    route_gpus,
    run_command,
)

COMPOSE = {"services": {"transformers": {"image": "llenergy/transformers:1"}, "vllm": {"image": "llenergy/vllm:1"},
                        "noimage": {"build": "."}}}


class FakeDockerRunner:
    """Scripted docker/compose: every call recorded; behaviour switched by attributes."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict]] = []
        self.daemon_up = True
        self.images = {"llenergy/transformers:1": {"org.llenergy.version": "0.1.0"}, "llenergy/vllm:1": {}}
        self.item_exit = 0
        self.item_timeout = False
        self.up_exit = 0
        self.compose_v2 = True
        self.leftover: list[str] = []

    def verb(self, argv: list[str]) -> str:
        args = argv[2:] if argv[:2] == ["docker", "compose"] else argv[1:]
        i = 0
        while i < len(args) and args[i].startswith("-"):
            i += 2 if args[i] in ("-f", "-p", "--env-file") else 1
        return args[i] if i < len(args) else ""

    def __call__(self, argv, *, env=None, timeout=None, merge_output=False, cwd=None) -> Completed:
        argv = list(argv)
        self.calls.append((argv, dict(env or {})))
        done = lambda code=0, out="", err="", **kw: Completed(tuple(argv), code, out, err, **kw)  # noqa: E731
        if argv[:2] == ["docker", "version"]:
            return done(0, "24.0.7\n") if self.daemon_up else done(
                1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
        if argv[:3] == ["docker", "image", "inspect"]:
            labels = self.images.get(argv[-1])
            if labels is None:
                return done(1, "[]\n", f"Error response from daemon: No such image: {argv[-1]}")
            import json

            return done(0, json.dumps({"Id": "sha256:abc", "Config": {"Labels": labels}}) + "\n")
        if argv[:2] in (["docker", "kill"], ["docker", "rm"]):
            return done()
        if argv[:2] == ["docker", "ps"]:
            return done(0, "".join(f"{c}\n" for c in self.leftover))
        if argv[:2] == ["docker", "info"]:
            return done(0, '{"Runtimes": {"runc": {}}}\n')
        if argv[:2] == ["docker", "inspect"]:
            return done(0, "sha256:running\n" if "{{.Image}}" in argv else "/lem-x-transformers-1\n")
        compose = argv[:2] == ["docker", "compose"] or argv[:1] == ["docker-compose"]
        if not compose:
            return done(127, "", "not found", missing=True)
        if argv[:2] == ["docker", "compose"] and not self.compose_v2:
            return done(1, "", "docker: unknown command: docker compose")
        verb = self.verb(argv)
        if verb == "version":
            return done(0, "2.40.3\n" if argv[0] == "docker" else "1.29.2\n")
        if verb == "config":
            return done(0, yaml.safe_dump(COMPOSE))
        if verb == "up":
            return done(self.up_exit, "", "boom" if self.up_exit else "")
        if verb == "ps":
            return done(0, "0123456789abcdef\n")
        if verb == "down":
            return done()
        if verb in ("run", "exec"):
            if self.item_timeout:
                return done(-9, "still running...\n", timed_out=True)
            return done(self.item_exit, "".join(f"line {i}\n" for i in range(100)))
        return done(1, "", f"unexpected {argv}")

    def verbs(self) -> list[str]:
        return [self.verb(argv) if "compose" in " ".join(argv[:2]) else argv[1] for argv, _ in self.calls]


@pytest.fixture
def settings(tmp_path: Path) -> DispatchSettings:
    tmp_path.chmod(0o755)  # the project: readable by the containers' user
    compose = tmp_path / "docker" / "compose.yaml"
    compose.parent.mkdir()
    compose.write_text(yaml.safe_dump(COMPOSE))
    (compose.parent / ".env").write_text("TORCH_VERSION=2.13.0\n")
    return DispatchSettings(compose_file=compose, project="lem-run1",
                            paths=PathMap(tmp_path, "/workspace", tmp_path / "lem-results", "/results"),
                            plugin_version="0.1.0", uid=1000, gid=1000, cwd=tmp_path)


def command() -> ItemCommand:
    return ItemCommand(nodeid="t.py::test_inference[c1-x]", campaign="/workspace/c.yaml", run_id="r1", seed=1,
                       seed_drawn=False, cycles=1, order="interleaved", results_dir="/results",
                       report_path="/results/c/r1/.dispatch/k.json")


class TestPreflight:
    def test_all_good_creates_secrets_and_passes_the_user(self, settings):
        runner = FakeDockerRunner()
        pre = ContainerDispatcher(settings, runner, environ={}).preflight(["transformers", "vllm"])
        assert pre.error is None and pre.daemon == "24.0.7" and pre.compose.major == 2
        assert pre.problem("transformers") is None and pre.problem("vllm") is None
        assert (settings.compose_file.parent / "secrets.env").exists()
        assert pre.notes == ["created docker/secrets.env (empty; for HF_TOKEN and other secrets)",
                             "added secrets.env to docker/.gitignore (secrets are never committed)"]
        assert "secrets.env" in (settings.compose_file.parent / ".gitignore").read_text().splitlines()
        again = ContainerDispatcher(settings, FakeDockerRunner(), environ={}).preflight(["transformers"])
        assert again.notes == []  # created once, ignored once
        config_argv, config_env = next((a, e) for a, e in runner.calls if runner.verb(a) == "config")
        assert config_env["PUID"] == "1000" and config_env["PGID"] == "1000"
        assert ["--env-file", str(settings.compose_file.parent / ".env")] == config_argv[6:8]

    def test_a_compose_folder_that_cannot_be_written_is_a_note(self, settings, monkeypatch):
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("pytest_llenergy.dispatch.dispatcher.ensure_secrets_file", refuse)
        pre = ContainerDispatcher(settings, FakeDockerRunner(), environ={}).preflight(["transformers"])
        assert pre.error is None and pre.problem("transformers") is None
        assert pre.notes == ["cannot create docker/secrets.env or list it in the .gitignore beside it (Permission "
                             "denied): containers get no secrets from it; never commit it"]

    def test_image_missing_names_the_exact_build_command(self, settings):
        runner = FakeDockerRunner()
        del runner.images["llenergy/vllm:1"]
        (settings.compose_file.parent / "compose.build.yaml").write_text("services: {}\n")
        source = Path(pytest_llenergy.__file__).parent.parent  # a checkout: what compose.build.yaml builds from
        pre = ContainerDispatcher(settings, runner, environ={"LEM_BUILD_CONTEXT": str(source)}).preflight(["transformers", "vllm"])
        assert pre.problem("transformers") is None
        assert pre.problem("vllm") == (
            "image llenergy/vllm:1 for service 'vllm' is not on this machine (dispatch never pulls or builds); build "
            "it with: docker compose -f docker/compose.yaml -f docker/compose.build.yaml --env-file docker/.env build vllm")

    def test_image_missing_without_the_plugins_source_says_where_to_get_it(self, settings):
        """An installed wheel has the compose files but not the source the images install the plugin from."""
        runner = FakeDockerRunner()
        del runner.images["llenergy/vllm:1"]
        (settings.compose_file.parent / "compose.build.yaml").write_text("services: {}\n")
        pre = ContainerDispatcher(settings, runner, environ={}).preflight(["vllm"])
        context = settings.compose_file.parent.parent.parent
        assert pre.problem("vllm").endswith(
            f"build vllm (the images install pytest-llenergy from its source, and {context} is not one: set "
            "LEM_BUILD_CONTEXT to a checkout or an unpacked sdist of this version (it needs pyproject.toml))")

    def test_v1_build_command(self, settings):
        runner = FakeDockerRunner()
        runner.compose_v2 = False
        del runner.images["llenergy/vllm:1"]
        pre = ContainerDispatcher(settings, runner, environ={}).preflight(["vllm"])
        assert pre.problem("vllm").endswith("docker-compose -f docker/compose.yaml --env-file docker/.env build vllm")

    def test_every_problem_one_line(self, settings):
        runner = FakeDockerRunner()
        del runner.images["llenergy/vllm:1"]
        COMPOSE["services"]["transformers"]["gpus"] = "all"
        try:
            settings.run_dir = settings.compose_file.parent.parent / "run"
            settings.run_dir.mkdir(mode=0o755)
            settings.uid = settings.run_dir.stat().st_uid + 1
            pre = ContainerDispatcher(settings, runner, environ={}).preflight(["transformers", "vllm"])
        finally:
            del COMPOSE["services"]["transformers"]["gpus"]
        if os.getuid() == 0:  # root hands the run directory over instead of complaining
            assert settings.run_dir.stat().st_uid == settings.uid
        lines = pre.problems(["transformers", "vllm"])
        assert len(lines) == 2 + (os.getuid() != 0) and all("\n" not in line for line in lines)
        assert any(line.startswith("service 'transformers' reserves NVIDIA GPUs") for line in lines)
        assert any(line.startswith("image llenergy/vllm:1 for service 'vllm' is not on this machine") for line in lines)

    def test_image_of_an_older_plugin_is_noted(self, settings):
        runner = FakeDockerRunner()
        runner.images["llenergy/transformers:1"] = {"org.llenergy.version": "0.0.9"}
        pre = ContainerDispatcher(settings, runner, environ={}).preflight(["transformers"])
        assert pre.problem("transformers") is None
        assert any("has pytest-llenergy 0.0.9, this host 0.1.0; rebuild with:" in note for note in pre.notes)

    def test_daemon_down(self, settings):
        runner = FakeDockerRunner()
        runner.daemon_up = False
        pre = ContainerDispatcher(settings, runner, environ={"DOCKER_HOST": "unix:///x.sock"}).preflight(["vllm"])
        assert pre.error == ("Docker daemon not reachable at unix:///x.sock: Cannot connect to the Docker daemon at "
                             "unix:///var/run/docker.sock. Is the docker daemon running? (start the daemon, or point "
                             "DOCKER_HOST at a running one)")
        assert pre.problem("vllm") == pre.error

    def test_compose_file_missing(self, settings):
        settings.compose_file.unlink()
        pre = ContainerDispatcher(settings, FakeDockerRunner(), environ={}).preflight(["vllm"])
        assert pre.error.startswith("compose file ") and "not found (dispatch.compose_file)" in pre.error

    def test_service_without_image_or_unknown(self, settings):
        pre = ContainerDispatcher(settings, FakeDockerRunner(), environ={}).preflight(["noimage", "tensorrt"])
        assert pre.problem("noimage") == "service 'noimage' names no image (add `image:` to it)"
        assert "has no service 'tensorrt' (it has: noimage, transformers, vllm)" in pre.problem("tensorrt")


class TestEphemeral:
    def test_run_routes_gpus_and_names_the_container(self, settings):
        runner = FakeDockerRunner()
        dispatcher = ContainerDispatcher(settings, runner, environ={"PATH": "/bin"})
        dispatcher.preflight(["transformers"])
        seen = []
        result = dispatcher.run_item("transformers", command(), route_gpus("1,3"), "c1-x",
                                     announce=lambda *a: seen.append(a))
        (argv, env), inspect, remove = runner.calls[-3:]
        assert runner.verb(argv) == "run" and "--rm" not in argv
        # the container that ran the item is inspected for its image, then removed
        assert inspect[0] == ["docker", "inspect", "--format", "{{.Image}}", result.container]
        assert remove[0] == ["docker", "rm", "-f", result.container] and result.image_id == "sha256:running"
        assert f"LEM_CONTAINER_NAME={result.container}" in argv  # not HOSTNAME: the host's under network_mode: host
        labels = yaml.safe_load(Path(argv[argv.index("-f", 3) + 1]).read_text())["services"]["transformers"]["labels"]
        assert labels["org.llenergy.project"] == str(settings.paths.host_project.resolve())
        assert labels["org.llenergy.owner"].split(":")[1] == str(os.getpid())
        assert argv[argv.index("-e") + 1] == "NVIDIA_VISIBLE_DEVICES=1,3"
        assert "CUDA_VISIBLE_DEVICES=0,1" in argv
        assert env["NVIDIA_VISIBLE_DEVICES"] == "1,3"  # interpolated into the compose file's reservation
        assert env["LEM_RESULTS_DIR"] == str((settings.compose_file.parent.parent / "lem-results").resolve())
        assert argv[-len(command().argv()):] == command().argv()
        assert argv[argv.index("--pull") + 1] == "never"  # compose v2: never pull
        assert "LEM_CONTAINER_IMAGE=llenergy/transformers:1" in argv and "LEM_CONTAINER_IMAGE_ID=sha256:abc" in argv
        assert result.returncode == 0 and result.strategy == "ephemeral" and result.image == "llenergy/transformers:1"
        assert seen == [("ephemeral", "llenergy/transformers:1", result.container)]
        assert result.container.startswith("lem-run1-c1-x-")
        assert result.tail(3) == "line 97\nline 98\nline 99"

    def test_non_zero_exit(self, settings):
        runner = FakeDockerRunner()
        runner.item_exit = 137
        dispatcher = ContainerDispatcher(settings, runner, environ={})
        dispatcher.preflight(["transformers"])
        result = dispatcher.run_item("transformers", command(), route_gpus(None), "c1-x")
        assert result.returncode == 137
        assert result.describe().endswith("exit 137: the container was killed (SIGKILL: out of memory, or a timeout)")

    def test_image_gone_before_the_item_is_not_run(self, settings):
        runner = FakeDockerRunner()
        dispatcher = ContainerDispatcher(settings, runner, environ={})
        dispatcher.preflight(["transformers"])
        del runner.images["llenergy/transformers:1"]
        result = dispatcher.run_item("transformers", command(), route_gpus(None), "c1-x")
        assert result.error.startswith("image llenergy/transformers:1 is gone (removed after the preflight)")
        assert "run" not in runner.verbs()

    def test_interrupt_removes_the_container(self, settings):
        runner = FakeDockerRunner()
        dispatcher = ContainerDispatcher(settings, runner, environ={})
        dispatcher.preflight(["transformers"])
        real = runner.__call__

        def interrupted(argv, **kw):
            if runner.verb(list(argv)) == "run":
                runner.calls.append((list(argv), {}))
                raise KeyboardInterrupt
            return real(argv, **kw)

        dispatcher.runner = interrupted
        with pytest.raises(KeyboardInterrupt):
            dispatcher.run_item("transformers", command(), route_gpus(None), "c1-x")
        name = runner.calls[-3][0][runner.calls[-3][0].index("--name") + 1]
        assert [argv for argv, _ in runner.calls[-2:]] == [["docker", "kill", name], ["docker", "rm", "-f", name]]
        runner.leftover = ["abc123"]  # and the session's end sweeps whatever of the project is left
        assert dispatcher.close(interrupted=True) == ["removed 1 container(s) of lem-run1 still there"]
        assert runner.calls[-2][0][-2:] == ["--filter", "label=com.docker.compose.project=lem-run1"]
        assert runner.calls[-1][0] == ["docker", "rm", "-f", "abc123"]

    def test_timeout_kills_the_container(self, settings):
        runner = FakeDockerRunner()
        runner.item_timeout = True
        settings.timeout_s = 5
        dispatcher = ContainerDispatcher(settings, runner, environ={})
        dispatcher.preflight(["transformers"])
        result = dispatcher.run_item("transformers", command(), route_gpus(None), "c1-x")
        assert result.timed_out and "timed out after" in result.describe()
        killed = [argv for argv, _ in runner.calls if argv[:2] == ["docker", "kill"]]
        assert killed == [["docker", "kill", result.container]]

    def test_run_before_preflight_is_an_error(self, settings):
        with pytest.raises(DispatchError, match="before its preflight"):
            ContainerDispatcher(settings, FakeDockerRunner(), environ={}).run_item(
                "transformers", command(), route_gpus(None), "c1-x")


class FakeWorker:
    """Stands in for the ``docker exec -i`` worker: answers every item at once."""

    started: list[list[str]] = []

    def __init__(self, argv, env) -> None:
        self.argv, self.requests, self.closed = list(argv), [], False
        FakeWorker.started.append(self.argv)

    alive = True

    def mark(self) -> int:
        return 0

    def output_since(self, mark: int) -> str:
        return "worker output"

    def wait_ready(self, deadline):
        return {"ready": True}

    def request(self, message, deadline):
        self.requests.append(message)
        return {"done": message["nodeid"], "failed": False}

    def close(self, timeout=60):
        self.closed = True
        return 0

    def kill(self) -> None:
        pass


class TestPersistent:
    def test_up_once_one_worker_down_at_close(self, settings):
        settings.strategy = "persistent"
        runner = FakeDockerRunner()
        FakeWorker.started = []
        dispatcher = ContainerDispatcher(settings, runner, environ={}, worker_factory=FakeWorker)
        dispatcher.preflight(["transformers"])
        nodeids = [f"t.py::test_inference[c{i}-x]" for i in range(3)]
        for i in range(3):
            result = dispatcher.run_item("transformers", command(), route_gpus("2"), "c1-x", serve=nodeids,
                                         next_nodeid=nodeids[i + 1] if i < 2 else None)
            assert result.container == "lem-x-transformers-1" and result.image_id == "sha256:running"
            assert result.returncode == 0 and result.output == "worker output"
        verbs = [v for v in runner.verbs() if v in ("up", "exec", "down", "run")]
        assert verbs == ["up"]
        up_argv, up_env = next((a, e) for a, e in runner.calls if runner.verb(a) == "up")
        assert up_env["NVIDIA_VISIBLE_DEVICES"] == "2" and up_argv[-6:] == ["-d", "--no-build", "--pull", "never", "--no-deps", "transformers"]
        (argv,) = FakeWorker.started  # one worker for the three items
        assert argv[:3] == ["docker", "exec", "-i"] and "CUDA_VISIBLE_DEVICES=0" in argv
        assert "LEM_CONTAINER_IMAGE_ID=sha256:running" in argv  # the running container's image
        assert "LEM_CONTAINER_NAME=lem-x-transformers-1" in argv  # its name (HOSTNAME is the host's under network_mode: host)
        assert "0123456789abcdef" in argv and "--lem-dispatch-serve" in argv and all(n in argv for n in nodeids)
        worker = dispatcher._workers["transformers"]
        assert [r["next"] for r in worker.requests] == [nodeids[1], nodeids[2], None]
        assert worker.requests[0]["report"] == command().report_path
        assert dispatcher.close() == ["brought persistent containers down (transformers)"]
        assert worker.closed and runner.verbs()[-2] == "down"
        assert dispatcher.close() == []  # idempotent

    def test_other_gpus_recreate_the_container(self, settings):
        settings.strategy = "persistent"
        runner = FakeDockerRunner()
        dispatcher = ContainerDispatcher(settings, runner, environ={}, worker_factory=FakeWorker)
        dispatcher.preflight(["transformers"])
        dispatcher.run_item("transformers", command(), route_gpus("2"), "c1-x")
        dispatcher.run_item("transformers", command(), route_gpus("3"), "c1-x")
        ups = [a for a, _ in runner.calls if runner.verb(a) == "up"]
        assert len(ups) == 2 and "--force-recreate" in ups[1]

    def test_keep(self, settings):
        settings.strategy, settings.keep_containers = "persistent", True
        runner = FakeDockerRunner()
        dispatcher = ContainerDispatcher(settings, runner, environ={}, worker_factory=FakeWorker)
        dispatcher.preflight(["transformers"])
        dispatcher.run_item("transformers", command(), route_gpus(None), "c1-x")
        (line,) = dispatcher.close()
        assert line == ("kept persistent containers (transformers); remove them with: "
                        "docker compose -f docker/compose.yaml -p lem-run1 --env-file docker/.env down")
        assert "down" not in runner.verbs()

    def test_kept_containers_still_go_down_after_an_interrupt(self, settings):
        settings.strategy, settings.keep_containers = "persistent", True
        runner = FakeDockerRunner()
        dispatcher = ContainerDispatcher(settings, runner, environ={}, worker_factory=FakeWorker)
        dispatcher.preflight(["transformers"])
        dispatcher.run_item("transformers", command(), route_gpus(None), "c1-x")
        assert dispatcher.close(interrupted=True) == ["brought persistent containers down (transformers)"]
        down = next(a for a, _ in runner.calls if runner.verb(a) == "down")
        assert down[-2:] == ["-t", "0"]

    def test_up_failure_is_reported_not_raised(self, settings):
        settings.strategy = "persistent"
        runner = FakeDockerRunner()
        runner.up_exit = 1
        dispatcher = ContainerDispatcher(settings, runner, environ={})
        dispatcher.preflight(["transformers"])
        result = dispatcher.run_item("transformers", command(), route_gpus(None), "c1-x")
        assert result.error.startswith("`compose up -d transformers` failed (exit 1):")
        assert "exec" not in runner.verbs()


class TestRealCommands:
    """The real ``docker`` CLI and process runner, without needing a daemon."""

    @pytest.mark.requires("docker")
    def test_daemon_down_with_the_real_cli(self, tmp_path):
        docker = shutil.which("docker")
        if docker is None:
            pytest.skip("no docker CLI on PATH")
        env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"}
        with pytest.raises(DispatchError) as info:
            daemon_version(docker=docker, env=env)
        assert f"Docker daemon not reachable at unix://{tmp_path}/nothing.sock:" in str(info.value)

    def test_no_docker_cli(self, tmp_path):
        with pytest.raises(DispatchError, match="docker CLI not found on PATH"):
            daemon_version(env={"PATH": str(tmp_path)})

    def test_image_inspect_never_pulls(self, tmp_path):
        script = tmp_path / "docker"
        script.write_text("#!/bin/sh\necho 'Error response from daemon: No such image: x:1' >&2\nexit 1\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        assert image_info("x:1", docker=str(script)) is None

    def test_runner_timeout_kills_the_process_group(self):
        done = run_command(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5)
        assert done.timed_out and done.duration_s < 10

    def test_runner_missing_executable(self):
        done = run_command(["/nonexistent/docker", "version"])
        assert done.missing and done.returncode == 127
