"""Webhook notifications: POST a small JSON payload, never failing or stalling the campaign.

Sends happen on one background thread with a short timeout and a few retries with backoff;
at session end the sender waits a bounded time for what is queued, then gives up quietly.
Payloads carry ids and figures only: no config values that could hold paths or tokens.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from pytest_llenergy.config.base import default_of
from pytest_llenergy.config.campaign import NotificationsConfig


def check_url(url: str) -> str:
    """The URL when it is http(s) with a host; ValueError otherwise."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"webhook_url must be an http(s) URL, got {url!r}")
    return url


@dataclass
class WebhookSender:
    """A bounded, retrying, fire-and-forget JSON poster."""

    url: str
    timeout_s: float = default_of(NotificationsConfig, "timeout_s")
    retries: int = default_of(NotificationsConfig, "retries")
    backoff_s: float = 0.5
    max_queue: int = 1000
    log: Callable[[str], None] = lambda message: None
    sent: int = 0
    failed: int = 0
    _queue: queue.Queue = field(init=False)
    _thread: threading.Thread | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        check_url(self.url)
        self._queue = queue.Queue(self.max_queue)

    def send(self, payload: dict[str, Any]) -> None:
        """Queue ``payload``; drops it (and counts a failure) when the queue is full."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lem-webhook", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self.failed += 1

    def _run(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            self._post(payload)
            self._queue.task_done()

    def _post(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, default=str).encode()
        error: Exception | None = None
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=body, method="POST",
                                             headers={"Content-Type": "application/json", "User-Agent": "pytest-llenergy"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - checked scheme
                    if 200 <= response.status < 300:
                        self.sent += 1
                        return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                error = exc
            else:
                error = RuntimeError(f"HTTP {response.status}")
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        self.failed += 1
        self.log(f"webhook {self.url}: gave up after {self.retries + 1} attempts ({error})")

    def close(self, wait_s: float = 10.0) -> None:
        """Wait up to ``wait_s`` for queued sends, then stop (the thread is a daemon either way)."""
        if self._thread is None:
            return
        deadline = time.monotonic() + wait_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass


RESULT_FIELDS = ("campaign", "run_id", "experiment_id", "cycle", "cycles_total", "item_id", "status", "error",
                 "backend", "model", "duration_s", "output_tokens", "tokens_per_s")
ENERGY_FIELDS = ("energy_j", "adjusted_energy_j", "energy_per_output_token_j", "adjusted_energy_per_output_token_j",
                 "mean_power_w", "source", "estimated", "simulated")


def result_payload(event: str, result: Any) -> dict[str, Any]:
    """An item event: ids, status and headline figures (no config, no environment)."""
    payload = {"event": event, **{k: getattr(result, k) for k in RESULT_FIELDS}}
    if result.energy is not None:
        payload["energy"] = {k: getattr(result.energy, k) for k in ENERGY_FIELDS}
    if result.error:
        payload["error"] = result.error[:500]
    return payload
