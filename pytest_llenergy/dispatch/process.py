"""Running external commands (docker, compose) with a time limit; a seam for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Completed:
    """What a command did: exit status and output (stdout holds stderr too when merged)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    timed_out: bool = False
    missing: bool = False
    """The executable was not found (``returncode`` is 127 then)."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def output(self) -> str:
        return self.stdout + (self.stderr if self.stderr else "")

    def last_line(self) -> str:
        """The last non-empty line of the output: usually the error message."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        return lines[-1] if lines else f"exit {self.returncode}, no output"


class Runner(Protocol):
    def __call__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        merge_output: bool = False,
        cwd: str | None = None,
    ) -> Completed: ...


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group ``proc`` leads (started with ``start_new_session``)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        try:
            proc.kill()
        except OSError:
            pass


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    merge_output: bool = False,
    cwd: str | None = None,
) -> Completed:
    """Run ``argv`` (no shell) in its own process group; on timeout the whole group is killed."""
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
            text=True, errors="replace",
        )
    except FileNotFoundError as exc:
        return Completed(tuple(argv), 127, "", f"{argv[0]}: not found ({exc.strerror})", missing=True)
    except OSError as exc:
        return Completed(tuple(argv), 126, "", f"{argv[0]}: cannot run: {exc}")
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        timed_out = True
    except BaseException:  # Ctrl-C / SIGTERM while waiting: the client must not outlive us (re-parented to pid 1)
        kill_group(proc)
        proc.wait()
        raise
    return Completed(tuple(argv), proc.returncode, out or "", err or "", time.perf_counter() - started, timed_out)
