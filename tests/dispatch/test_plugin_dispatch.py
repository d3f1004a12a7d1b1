"""Plugin behaviour of container dispatch, against the stand-in ``docker`` (no daemon needed).

The fake's ``compose run`` / ``exec`` run the item's pytest as a local subprocess, so these tests
see the whole path: routing, preflight, the container command, the report the "container" sends
back, the host's reports, result files and the manifest.
"""

from __future__ import annotations

import json
import os

import pytest

from .conftest import (
    FAILING_TEST,
    REUSING_BACKEND_CONFTEST,
    SEARCH_CAMPAIGN,
    SEARCH_TEST,
    SLEEPY_BACKEND_CONFTEST,
    expected_rounds,
    fake_campaign,
    manifest,
    results,
    write_fake_project,
)

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _argv_value(argv: list[str], prefix: str) -> str:
    return next(a for a in argv if a.startswith(prefix))[len(prefix):]


class TestEphemeral:
    @pytest.mark.slow
    def test_items_run_in_containers_and_follow_their_outcome(self, pytester, fake_docker, monkeypatch):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
        write_fake_project(pytester, fake_campaign(pytester.path), FAILING_TEST)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-v", "-p", "no:cacheprovider",
                                    "--junitxml=junit.xml")
        result.assert_outcomes(passed=1, failed=1)
        # the failure is the container's, with its output tail
        result.stdout.fnmatch_lines([
            "*AssertionError: batch size 2 fails on purpose*",
            "*container output (last 60 lines)*",
        ])
        # verbose mode names strategy, image and container per item
        result.stdout.fnmatch_lines([
            "llenergy: c1-transformers-gpt2-bs1-*: docker ephemeral, service transformers, "
            "image lem-fake-transformers:1, container lem-*-c1-transformers-gpt2-bs1-*",
        ])
        runs = fake_docker.compose_calls("run")
        assert len(runs) == 2
        argv = runs[0]
        assert argv[argv.index("run"):argv.index("run") + 3] == ["run", "-T", "--no-deps"]
        assert "--lem-dispatched" in argv and "--lem-dispatch=local" in argv
        # same ids as the controller: run id, seed, results dir; the container invents nothing
        found = results(pytester)
        assert set(found) == {i for i in found if i.startswith("c1-transformers-gpt2-bs")} and len(found) == 2
        run_ids = {r["run_id"] for r in found.values()}
        assert run_ids == {_argv_value(argv, "--lem-run-id=")}
        assert _argv_value(argv, "--lem-seed=") == "7"
        assert _argv_value(argv, "--lem-results-dir=") == str(pytester.path / "lem-results")
        statuses = {item.split("-bs")[1][0]: r["status"] for item, r in found.items()}
        assert statuses == {"1": "passed", "2": "failed"}
        # the host's manifest follows the container's outcome through lem_key / lem_result
        entries = manifest(pytester)["entries"]
        assert sorted(e["status"] for e in entries.values()) == ["failed", "passed"]
        assert all(e["result_path"].startswith("experiments/") for e in entries.values())
        # the per-item report files the containers wrote are cleaned up
        assert not list((pytester.path / "lem-results").rglob(".dispatch"))
        # secrets file created owner-only; no .env is generated (docker/.env is committed)
        assert (pytester.path / "secrets.env").stat().st_mode & 0o077 == 0 and not (pytester.path / ".env").exists()
        # provenance: image, image id and the versions seen inside, in every result and the manifest
        for stored in found.values():
            assert stored["container"]["image"] == "lem-fake-transformers:1"
            # the image id of the container that ran the item (docker inspect), not the preflight's
            assert stored["container"]["image_id"] == "sha256:fake-running"
            assert stored["container"]["service"] == "transformers" and stored["container"]["strategy"] == "ephemeral"
            assert stored["container"]["versions"]["pytest-llenergy"] and stored["container"]["versions"]["python"]
        for entry in entries.values():
            assert entry["container"]["image_id"] == "sha256:fake-running"
            assert entry["container"]["versions"]["pytest-llenergy"]
        # ... and in JUnit XML (which keeps only the teardown report's properties)
        xml = (pytester.path / "junit.xml").read_text()
        assert xml.count('name="lem_container"') == 2 and "sha256:fake-running" in xml
        # the container never writes the project's pytest cache
        assert not (pytester.path / ".pytest_cache").exists()
        # GPU routing: host ids for the runtime (compose interpolation), renumbered inside
        record = next(r for r in fake_docker.records() if "run" in r["argv"])
        assert record["env"]["NVIDIA_VISIBLE_DEVICES"] == "2,3"
        assert "CUDA_VISIBLE_DEVICES=0,1" in record["argv"]
        assert record["env"]["LEM_PROJECT_DIR"] == str(pytester.path.resolve())
        # thermal gaps stay on the host: the container records the gap the host waited
        for argv in runs:
            gap = json.loads(_argv_value(argv, "--lem-dispatch-gap="))
            item = next(a for a in argv if "::test_inference[" in a).split("[")[1].rstrip("]")
            assert found[item]["gap"]["reason"] == gap["reason"]


SKIPPING_TEST = '''
import pytest


def test_inference(lem_experiment, lem_session, lem_result):
    if lem_experiment.config.workload.batch_size == 2:
        pytest.skip("batch size 2 needs a GPU here")
    lem_result.record_generation(lem_session.run(lem_session.prepare(lem_experiment.config.workload)))
'''


class TestSkips:
    def test_a_skip_inside_the_container_is_reported_on_the_host(self, pytester, fake_docker):
        """The skip's (path, line, reason) crosses JSON as a list: -rs would stop pytest with an INTERNALERROR."""
        write_fake_project(pytester, fake_campaign(pytester.path), SKIPPING_TEST, conftest=REUSING_BACKEND_CONFTEST)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-rs", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1, skipped=1)
        result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *test_suite.py:*: batch size 2 needs a GPU here"])
        assert "INTERNALERROR" not in result.stdout.str()
        statuses = sorted((e["item_id"].split("-bs")[1][0], e["status"]) for e in manifest(pytester)["entries"].values())
        assert statuses == [("1", "passed"), ("2", "skipped")]

    @pytest.mark.slow
    def test_a_search_races_in_containers(self, pytester, fake_docker):
        """Each container decides from the shared run directory whether its configuration is still racing."""
        campaign = fake_campaign(pytester.path, batch_sizes=(1, 2, 4)) + SEARCH_CAMPAIGN
        write_fake_project(pytester, campaign, SEARCH_TEST, conftest=SLEEPY_BACKEND_CONFTEST)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-container-strategy", "persistent", "-rs",
                                    "-p", "no:cacheprovider")
        assert result.ret == 0, result.stdout.str()[-3000:]
        result.stdout.fnmatch_lines(["SKIPPED * search: dropped after round *: worse than *"])
        search = json.loads(next((pytester.path / "lem-results" / "disp").glob("*/summary.json")).read_text())["search"]
        drops = {d["config"]: d["round"] for d in search["dropped"]}
        ran: dict[str, list[int]] = {}
        for stored in results(pytester).values():
            assert stored["container"]["strategy"] == "persistent"
            ran.setdefault(stored["experiment_id"], []).append(stored["cycle"])
        assert any("bs1" in config for config in drops) and "bs1" not in search["pick"]
        assert {c: sorted(v) for c, v in ran.items()} == expected_rounds(search, ran), search  # every config: round 1 on


class TestUser:
    @pytest.mark.slow
    def test_dispatch_user_sets_the_containers_user_and_gets_the_run_directory(self, pytester, fake_docker):
        write_fake_project(pytester, fake_campaign(pytester.path, batch_sizes=(1,), dispatch="user: '4321:4322'"))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        record = next(r for r in fake_docker.records() if "run" in r["argv"])
        assert (record["env"]["PUID"], record["env"]["PGID"]) == ("4321", "4322")
        (run_dir,) = (pytester.path / "lem-results" / "disp").iterdir()
        if os.getuid() == 0:  # run as root, the host hands the run directory to the containers' user
            assert (run_dir.stat().st_uid, (run_dir / "experiments").stat().st_gid) == (4321, 4322)

    @pytest.mark.requires("setpriv")
    def test_results_not_writable_by_the_user_stop_the_run(self, pytester, fake_docker):
        """An ordinary user's run stops before any container starts. Run as root (CI), the session runs
        as ``nobody`` through setpriv: root would hand the run directory over instead."""
        if os.getuid() != 0:
            write_fake_project(pytester, fake_campaign(pytester.path, batch_sizes=(1,), dispatch="user: '4321:4322'"))
            result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
            assert result.ret == pytest.ExitCode.USAGE_ERROR
            result.stderr.fnmatch_lines(["*is not writable by the container's user 4321:4322*"])
            return
        ret, err = run_as_nobody(pytester, fake_docker)
        assert ret == pytest.ExitCode.USAGE_ERROR, err[-3000:]
        assert "is not writable by the container's user 4321:4322" in err
        assert not [c for c in fake_docker.calls() if "run" in c]  # stopped before any container


class TestFailurePaths:
    @pytest.mark.slow
    def test_container_exits_before_pytest(self, pytester, fake_docker):
        fake_docker.set(run_exit="125")
        write_fake_project(pytester, fake_campaign(pytester.path, batch_sizes=(1,)))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines([
            "*could not run in docker service 'transformers': container lem-*: "
            "exit 125: docker could not create or start the container*",
            "*OCI runtime create failed: fake failure*",
        ])
        (stored,) = results(pytester).values()
        assert stored["status"] == "failed" and "exit 125" in stored["error"]
        (entry,) = manifest(pytester)["entries"].values()
        assert entry["status"] == "failed"

    def test_image_missing_stops_before_the_campaign_with_the_build_command(self, pytester, fake_docker):
        fake_docker.set(missing="lem-fake-transformers:1")
        write_fake_project(pytester, fake_campaign(pytester.path))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([
            "ERROR: llenergy: docker dispatch cannot start:",
            "  image lem-fake-transformers:1 for service 'transformers' is not on this machine (dispatch never pulls "
            "or builds); build it with: docker compose -f compose.yaml build transformers",
        ])
        assert not fake_docker.compose_calls("run")

    def test_daemon_down(self, pytester, fake_docker):
        fake_docker.set(daemon_down="1")
        write_fake_project(pytester, fake_campaign(pytester.path))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([
            "*Docker daemon not reachable at *: Cannot connect to the Docker daemon at unix:///fake/docker.sock.*"
            "(start the daemon, or point DOCKER_HOST at a running one)",
        ])

    def test_no_compose(self, pytester, fake_docker):
        fake_docker.set(no_compose="1")
        fake_docker.only_on_path()
        write_fake_project(pytester, fake_campaign(pytester.path))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*Docker Compose not found: neither `docker compose` (v2) nor `docker-compose` (v1)*"])

    def test_unknown_service(self, pytester, fake_docker):
        write_fake_project(pytester, fake_campaign(pytester.path, dispatch="services: {transformers: llama}"))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*compose file compose.yaml has no service 'llama' (it has: transformers, vllm)*"])


class TestPersistent:
    @pytest.mark.slow
    def test_one_worker_keeps_the_model_loaded_down_at_end(self, pytester, fake_docker):
        write_fake_project(pytester, fake_campaign(pytester.path), conftest=REUSING_BACKEND_CONFTEST)
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-container-strategy", "persistent",
                                    "-v", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=2)
        assert len(fake_docker.compose_calls("up")) == 1
        workers = [argv for argv in fake_docker.calls() if argv[:2] == ["exec", "-i"]]
        assert len(workers) == 1  # one long-lived worker ran both items
        assert len(fake_docker.compose_calls("down")) == 1
        assert not fake_docker.compose_calls("run")
        # ... so the model stayed loaded: the second item reused it, as a local run does
        loads = sorted((r["item_id"], r["load"]["cold"]) for r in results(pytester).values())
        assert [cold for _, cold in loads] == [True, False]
        assert {r["container"]["strategy"] for r in results(pytester).values()} == {"persistent"}
        assert {r["container"]["image_id"] for r in results(pytester).values()} == {"sha256:fake-running"}
        result.stdout.fnmatch_lines(["*docker persistent, service transformers, image lem-fake-transformers:1, "
                                     "container fake-container-name (fakecontaine)*",
                                     "llenergy: docker: brought persistent containers down (transformers)"])
        assert len(results(pytester)) == 2

    @pytest.mark.slow
    def test_keep_containers(self, pytester, fake_docker):
        write_fake_project(pytester, fake_campaign(pytester.path, batch_sizes=(1,)))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-container-strategy=persistent",
                                    "--lem-keep-containers", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        assert not fake_docker.compose_calls("down")
        result.stdout.fnmatch_lines(["llenergy: docker: kept persistent containers (transformers); remove them with: "
                                     "docker compose -f compose.yaml -p lem-* down"])

    @pytest.mark.slow
    def test_up_failure_errors_the_item(self, pytester, fake_docker):
        fake_docker.set(up_fail="1")
        write_fake_project(pytester, fake_campaign(pytester.path, batch_sizes=(1,)))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-container-strategy=persistent",
                                    "-p", "no:cacheprovider")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*`compose up -d transformers` failed (exit 1)*",
                                     "*could not select device driver*"])


class TestRouting:
    def test_local_is_the_default(self, pytester, fake_docker):
        write_fake_project(pytester, fake_campaign(pytester.path, batch_sizes=(1,)).replace("mode: docker", "mode: local"))
        pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider").assert_outcomes(passed=1)
        assert fake_docker.calls() == []

    def test_option_beats_campaign_which_beats_the_ini_twin(self, pytester, fake_docker):
        write_fake_project(pytester, fake_campaign(pytester.path).replace("  mode: docker\n", ""))  # mode unset
        pytester.makeini("[pytest]\nlem_dispatch = docker\nlem_container_strategy = persistent\n")
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only")
        result.stdout.fnmatch_lines(["llenergy: dispatch docker, container strategy persistent, compose file compose.yaml"])
        write_fake_project(pytester, fake_campaign(pytester.path).replace("mode: docker", "mode: local"))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only")
        assert "llenergy: dispatch docker" not in result.stdout.str()  # the campaign's mode beats the ini's
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-dispatch", "docker", "--collect-only")
        result.stdout.fnmatch_lines(["llenergy: dispatch docker, container strategy persistent, *"])

    def test_bad_ini_value(self, pytester, fake_docker):
        write_fake_project(pytester, fake_campaign(pytester.path))
        pytester.makeini("[pytest]\nlem_dispatch = kubernetes\n")
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*ini option lem_dispatch *: Input should be 'local', 'docker' or 'auto' (got 'kubernetes')"])

    @pytest.mark.slow
    def test_auto_runs_importable_backends_here_and_the_rest_in_containers(self, pytester, fake_docker):
        pytest.importorskip("torch")
        write_fake_project(pytester, fake_campaign(pytester.path, mode="auto", backends=("transformers", "vllm"),
                                                   batch_sizes=(1,)))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=2)
        (argv,) = fake_docker.compose_calls("run")
        assert "vllm" in argv and any("c1-vllm-" in a for a in argv)
        assert set(results(pytester)) == {i for i in results(pytester)} and len(results(pytester)) == 2

    def test_auto_skips_with_the_reason_when_no_container_can_run(self, pytester, fake_docker):
        fake_docker.set(daemon_down="1")
        write_fake_project(pytester, fake_campaign(pytester.path, mode="auto", backends=("vllm",), batch_sizes=(1,)))
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-rs", "-p", "no:cacheprovider")
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["SKIPPED*backend 'vllm' not importable here (*), and its container cannot run: "
                                     "Docker daemon not reachable*"])
        (entry,) = manifest(pytester)["entries"].values()
        assert entry["status"] == "skipped"


class TestShippedComposeFile:
    def test_default_is_the_packaged_compose_file_and_secrets_stay_in_the_project(self, pytester, fake_docker):
        """No dispatch.compose_file: the compose file shipped inside the package is used (no clone needed);
        the secrets file goes to the project's .lem/ (git-ignored), never into the installed package."""
        import yaml

        from pytest_llenergy.dispatch.files import docker_dir

        shipped = docker_dir()
        image = yaml.safe_load((shipped / "compose.yaml").read_text())["services"]["transformers"]["image"]
        fake_docker.set(missing=image)
        campaign = fake_campaign(pytester.path).replace("  compose_file: compose.yaml\n", "")
        assert "compose_file:" not in campaign
        write_fake_project(pytester, campaign)
        before = sorted(p.name for p in shipped.iterdir())
        result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([
            f"*for service 'transformers' is not on this machine (dispatch never pulls or builds); build it with: "
            f"docker compose -f {shipped}/compose.yaml -f {shipped}/compose.build.yaml --env-file {shipped}/.env "
            "build transformers*"])
        (config,) = fake_docker.compose_calls("config")
        assert config[config.index("-f") + 1] == str(shipped / "compose.yaml")
        secrets = pytester.path / ".lem" / "secrets.env"
        assert secrets.is_file() and (secrets.stat().st_mode & 0o777) == 0o600
        assert (pytester.path / ".lem" / ".gitignore").read_text().splitlines()[-1] == "*"
        assert sorted(p.name for p in shipped.iterdir()) == before  # nothing written into the package


def run_as_nobody(pytester: pytest.Pytester, fake_docker) -> tuple[int, str]:
    """The dispatch project in a directory of ``nobody``'s (pytest's temp dirs are root's, mode 0700),
    and a pytest session there as ``nobody`` via setpriv: (exit code, output)."""
    import pwd
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("as root, needs setpriv (util-linux) to run the session as an ordinary user")
    nobody = pwd.getpwnam("nobody")
    work = Path(tempfile.mkdtemp(prefix="lem-nobody-"))
    try:
        write_fake_project(pytester, fake_campaign(work, batch_sizes=(1,), dispatch="user: '4321:4322'"))
        shutil.copytree(pytester.path, work, dirs_exist_ok=True)
        shutil.copytree(fake_docker.bin_dir, work / "bin", dirs_exist_ok=True)
        for path in [work, *work.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
        source = str(Path(__file__).parents[2])  # this checkout's pytest_llenergy
        env = {**os.environ, "PATH": f"{work / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(work),
               "FAKE_DOCKER_LOG": str(fake_docker.log), "PYTHONPATH": os.pathsep.join(
                   p for p in (source, os.environ.get("PYTHONPATH")) if p)}
        fake_docker.log.parent.chmod(0o777)  # the fake docker logs its calls there (a root-owned dir)
        # nobody keeps only CAP_DAC_READ_SEARCH: it reads this interpreter and its packages wherever root
        # installed them (/root/.pyenv, ...), and writes only where nobody may
        done = subprocess.run([setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
                               "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", sys.executable, "-m", "pytest", "--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider"],
                              cwd=work, env=env, capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout + done.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
