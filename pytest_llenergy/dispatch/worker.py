"""A long-lived pytest inside a persistent container, driven one item at a time (``docker exec -i``).

The worker collects the service's items once and keeps its loaded model between items, as a local
run does. Protocol, one JSON object per line: the worker's stdout carries only replies (pytest's own
output goes to its stderr), its stdin only requests.

- worker -> host, once: ``{"ready": true, "collected": N, "collect_errors": [...]}``
- host -> worker: ``{"nodeid": ..., "report": <container path>, "gap": {...} | null, "next": <node id> | null}``
- worker -> host: ``{"done": <node id>, "failed": bool}`` after writing the item's report file
- host closes stdin: the worker finishes its session and exits.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

from pytest_llenergy.dispatch.process import kill_group

SERVE_FLAG = "--lem-dispatch-serve"


def take_protocol_streams() -> tuple[BinaryIO, BinaryIO]:
    """Inside the worker, before pytest captures anything: keep stdin/stdout for the protocol and
    point fd 0 at /dev/null and fd 1 at stderr, so nothing pytest prints can corrupt a reply."""
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return os.fdopen(proto_in, "rb", buffering=0), os.fdopen(proto_out, "wb", buffering=0)


def send(stream: BinaryIO, message: Mapping[str, Any]) -> None:
    stream.write((json.dumps(message, separators=(",", ":"), default=str) + "\n").encode())
    stream.flush()


class Worker:
    """The host's handle on one worker process (the ``docker exec -i`` client)."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=dict(env) if env is not None else None, start_new_session=True)
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lines: list[str] = []
        self._total = 0
        self._lock = threading.Lock()
        self.ready: dict[str, Any] | None = None
        for target in (self._read_replies, self._read_output):
            threading.Thread(target=target, daemon=True).start()

    def _read_replies(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                message = None
            if isinstance(message, dict):
                self.replies.put(message)
            else:
                self._add(raw.decode(errors="replace"))
        self.replies.put(None)

    def _read_output(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._add(raw.decode(errors="replace"))

    def _add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line.rstrip("\n"))
            self._total += 1
            del self._lines[:-20_000]

    def mark(self) -> int:
        """A position in the output, for :meth:`output_since`."""
        with self._lock:
            return self._total

    def output_since(self, mark: int) -> str:
        with self._lock:
            dropped = self._total - len(self._lines)
            return "\n".join(self._lines[max(0, mark - dropped):])

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _reply(self, deadline: float | None) -> dict[str, Any] | None:
        """The next reply; None when the worker ended; TimeoutError past ``deadline``."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return self.replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None

    def wait_ready(self, deadline: float | None) -> dict[str, Any] | None:
        if self.ready is None:
            message = self._reply(deadline)
            self.ready = message if message is not None and message.get("ready") else None
        return self.ready

    def request(self, message: Mapping[str, Any], deadline: float | None) -> dict[str, Any] | None:
        """Send one item; its ``done`` reply, or None when the worker ended first."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(message, default=str) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            return None
        while True:
            reply = self._reply(deadline)
            if reply is None or reply.get("done") == message.get("nodeid"):
                return reply

    def exit_status(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()

    def close(self, timeout: float = 60) -> int:
        """Close stdin (the worker finishes its session) and wait; killed past ``timeout``."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        return self.exit_status(timeout)

    def kill(self) -> None:
        kill_group(self.proc)
