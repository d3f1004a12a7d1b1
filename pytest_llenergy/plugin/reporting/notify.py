"""Notifications, as this plugin's own implementation of ``pytest_lem_result`` / ``pytest_lem_summary``.

Runs on the process that wrote the result (the controller, or each xdist worker), never fails or
stalls a test: sends are queued to a background thread with timeouts and bounded retries.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llenergy.config.campaign import NotificationsConfig
from pytest_llenergy.plugin.base import get_run
from pytest_llenergy.plugin.options import resolve
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.xdist import is_worker
from pytest_llenergy.results.notify import WebhookSender, result_payload


class NotifyPlugin:
    def __init__(self, config: pytest.Config, url: str, settings: NotificationsConfig) -> None:
        self.config, self.settings = config, settings
        self.sender = WebhookSender(url, timeout_s=settings.timeout_s, retries=settings.retries, log=self._warn)
        self.warnings: list[str] = []

    def _warn(self, message: str) -> None:
        self.warnings.append(message)

    def pytest_lem_result(self, config: pytest.Config, result: Any) -> None:
        event = "failure" if result.status == "failed" else "complete"
        if event in self.settings.on:
            self.sender.send(result_payload(event, result))

    def pytest_lem_summary(self, config: pytest.Config, summary: Any) -> None:
        if "campaign_done" in self.settings.on:
            run = get_run(config)
            payload = {"event": "campaign_done", "campaign": run.name if run else None,
                       "run_id": run.run_id if run else None}
            payload.update(getattr(summary, "headline", lambda: {})())
            self.sender.send(payload)

    def _drain(self) -> None:
        """Wait (bounded) for queued sends so their outcome can still be reported."""
        wait = self.settings.timeout_s * (self.settings.retries + 1) + 2.0
        self.sender.close(wait_s=wait)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._drain()

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self._drain()
        for line in self.warnings:
            terminalreporter.write_line(f"llenergy: {line}", yellow=True)


def register(session: LemSession) -> None:
    """Configure step: send webhooks when the run (campaign or ini) names a URL."""
    config, run = session.config, session.run
    settings = run.plan.campaign.notifications if run is not None else NotificationsConfig()
    url = resolve(config, "lem_webhook_url", run.plan.campaign if run is not None else None)
    if not url:
        return
    if "campaign_done" in settings.on and is_worker(config):
        settings = settings.model_copy(update={"on": [e for e in settings.on if e != "campaign_done"]})
    config.pluginmanager.register(NotifyPlugin(config, url, settings), "llenergy-notify")
