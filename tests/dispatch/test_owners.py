"""Owners of containers (labels, the orphan sweep's rule), the secrets file's .gitignore and the signal guard."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
import yaml

from pytest_llenergy.dispatch import Completed
from pytest_llenergy.dispatch.envfile import ensure_git_ignored
from pytest_llenergy.dispatch.owners import (
    KEEP,
    OWNER,
    PROJECT,
    labels,
    owner_alive,
    owner_id,
    sweep_orphans,
    write_label_file,
)
from pytest_llenergy.dispatch.signals import StopOnSignals


class TestOwners:
    def test_this_process_is_alive_a_dead_one_is_not(self):
        assert owner_alive(owner_id()) is True
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        dead = owner_id(child.pid)
        child.wait()
        assert owner_alive(dead) is False

    def test_a_reused_pid_is_not_the_owner(self):
        host, pid, start = owner_id().split(":")
        assert owner_alive(f"{host}:{pid}:{int(start) + 1}") is False

    def test_another_hosts_owner_is_unknown(self):
        assert owner_alive(f"not-{socket.gethostname()}:1:1") is None

    def test_label_file(self, tmp_path):
        path = write_label_file(["vllm", "transformers"], labels(tmp_path, keep=True))
        try:
            services = yaml.safe_load(path.read_text())["services"]
        finally:
            path.unlink()
        assert set(services) == {"vllm", "transformers"}
        assert services["vllm"]["labels"] == {PROJECT: str(tmp_path.resolve()), OWNER: owner_id(), KEEP: "true"}

    def test_sweep_removes_dead_owners_only_and_lists_kept(self, tmp_path):
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        dead = owner_id(child.pid)
        child.wait()
        listed = f"aaa {dead} false\nbbb {owner_id()} false\nccc {dead} true\nddd other-host:1:1 false\n"
        calls: list[list[str]] = []

        def runner(argv, **kwargs):
            calls.append(list(argv))
            return Completed(tuple(argv), 0, listed if argv[1] == "ps" else "")

        sweep = sweep_orphans(tmp_path, runner)
        assert calls[0][:4] == ["docker", "ps", "-a", "--filter"] and calls[0][4] == f"label={PROJECT}={tmp_path.resolve()}"
        assert calls[1:] == [["docker", "rm", "-f", "aaa"]]
        assert (sweep.removed, sweep.kept) == (["aaa"], ["ccc"])
        assert sweep.lines() == [
            "removed 1 container(s) left running by earlier runs of this project (their pytest ended without stopping them)",
            "1 container(s) kept by earlier runs of this project (keep_containers) are still there; remove them with: "
            "docker rm -f ccc"]


class TestGitIgnore:
    def test_added_once_beside_a_custom_compose_file(self, tmp_path):
        secrets = tmp_path / "secrets.env"
        (tmp_path / ".gitignore").write_text("build/\n")
        assert ensure_git_ignored(secrets) is True
        assert (tmp_path / ".gitignore").read_text().splitlines()[0] == "build/"
        assert "secrets.env" in (tmp_path / ".gitignore").read_text().splitlines()
        assert ensure_git_ignored(secrets) is False

    def test_left_alone_when_git_already_ignores_it(self, tmp_path):
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
        (tmp_path / ".gitignore").write_text("*.env\n")
        (tmp_path / "sub").mkdir()
        assert ensure_git_ignored(tmp_path / "sub" / "secrets.env") is False
        assert not (tmp_path / "sub" / ".gitignore").exists()


class TestSignals:
    def test_first_signal_interrupts_the_next_ones_print_one_line(self):
        said: list[str] = []
        guard = StopOnSignals(lambda: said.append("held"))
        before = signal.getsignal(signal.SIGINT)
        assert guard.install()
        try:
            with pytest.raises(KeyboardInterrupt, match="SIGHUP"):
                os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGINT)
            assert said == ["held"]
        finally:
            guard.restore()
        assert signal.getsignal(signal.SIGINT) is before

    def test_holding_while_containers_stop(self):
        said: list[str] = []
        guard = StopOnSignals(lambda: said.append("held"))
        assert guard.install()
        try:
            with guard.holding():
                os.kill(os.getpid(), signal.SIGTERM)
            assert said == ["held"] and not guard.stopping
        finally:
            guard.restore()
