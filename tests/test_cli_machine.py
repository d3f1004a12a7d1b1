"""`lem doctor` (every check, a verdict, --json) and `lem init` (machine-aware campaign, ini block, test)."""

from __future__ import annotations

import json

from pytest_llenergy.cli import main
from pytest_llenergy.cli.doctor import FAIL, NA, OK, WARN, Check, verdict


def test_doctor_json_covers_every_area(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    areas = {c["area"] for c in report["checks"]}
    assert areas >= {"gpu", "energy", "backend", "docker", "slurm", "threads", "results"}
    assert report["verdict"].startswith("ready") and report["can_run"]
    assert all(c["status"] in (OK, WARN, FAIL, NA) for c in report["checks"])


def test_unwritable_results_directory_is_not_ready(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["doctor", "--results-dir", str(tmp_path / "file" / "out")]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] results" in out and "verdict: not ready" in out


def test_verdict_lists_what_the_machine_can_run():
    checks = [Check("backend", "transformers", OK, ""), Check("energy", "nvml", OK, ""),
              Check("docker", "docker files", OK, ""), Check("docker", "daemon", OK, ""), Check("docker", "compose", OK, ""),
              Check("docker", "NVIDIA runtime", WARN, "no runtime"), Check("slurm", "Slurm", NA, "")]
    state, can = verdict(checks)
    assert state == "ready with warnings" and can == ["GPU energy campaigns (NVML)", "container dispatch"]
    checks[2] = Check("docker", "docker files", FAIL, "missing compose.yaml")  # no dispatch without the shipped files
    assert verdict(checks) == ("ready with warnings", ["GPU energy campaigns (NVML)"])
    assert verdict([Check("backend", "transformers", NA, "")])[0] == "not ready"


def test_init_writes_campaign_ini_block_and_test_that_run_without_flags(pytester, capsys):
    assert main(["init", "suite", "--non-interactive", "--name", "mine"]) == 0
    out = capsys.readouterr().out
    assert "machine: no GPU; energy source" in out and "wrote the [pytest] block to" in out
    ini = (pytester.path / "pytest.ini").read_text()
    assert "lem_campaign = suite/campaigns/mine.yaml" in ini and "lem_energy_source =" in ini
    assert "precision: float32" in (pytester.path / "suite" / "campaigns" / "mine.yaml").read_text()
    result = pytester.runpytest("suite", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert "6 tests collected" in result.stdout.str()  # 2 batch sizes x 3 cycles, from the ini alone


def test_init_appends_to_pyproject_once(pytester, capsys):
    (pytester.path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert main(["init", "suite", "--non-interactive"]) == 0
    assert main(["init", "suite", "--non-interactive"]) == 0
    text = (pytester.path / "pyproject.toml").read_text()
    assert text.count("[tool.pytest.ini_options]") == 1 and 'lem_campaign = "suite/campaigns/my-campaign.yaml"' in text
    assert "kept" in capsys.readouterr().out


def test_doctor_checks_the_shipped_docker_files(tmp_path, monkeypatch):
    from pytest_llenergy.cli.doctor import docker_files_check
    from pytest_llenergy.dispatch import files

    assert docker_files_check().status == OK and docker_files_check().detail.startswith(str(files.docker_dir()))
    partial = tmp_path / "docker"
    partial.mkdir()
    (partial / "compose.yaml").write_text("services: {}\n")
    monkeypatch.setattr(files, "docker_dir", lambda: partial)
    check = docker_files_check()
    assert check.status == FAIL and check.detail.startswith(f"{partial}: missing compose.build.yaml, .env, ")


def test_doctor_reports_dockers_own_message_when_the_daemon_is_down(tmp_path, monkeypatch):
    """docker info prints `|null` on stdout and the reason on stderr: the check shows the reason."""
    from pytest_llenergy.cli.doctor import docker_checks

    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho '|null'\n"
                    "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    daemon = next(c for c in docker_checks() if c.name == "daemon")
    assert daemon.status == FAIL
    assert daemon.detail == "not reachable: Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
