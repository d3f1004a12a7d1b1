"""Webhook notifications against real HTTP servers on 127.0.0.1: fine, hanging, failing."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from campaigns import write_suite

CAMPAIGN = """
name: notify
cycles: 1
defaults: {{model: gpt2}}
grid: {{shared: {{workload.batch_size: [1, 2]}}}}
measurement: {{energy_source: estimate}}
gaps: {{between_experiments: 0, between_cycles: 0}}
notifications: {{webhook_url: "{url}", on: [failure, complete, campaign_done], timeout_s: 0.5, retries: 2}}
"""


class Server:
    """A loopback HTTP server whose behaviour the test chooses: ok, hang or 500."""

    def __init__(self, mode: str) -> None:
        self.mode, self.bodies, self.attempts = mode, [], 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                outer.attempts += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.mode == "hang":
                    time.sleep(3)
                    return
                if outer.mode == "500":
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(request):
    srv = Server(request.param)
    yield srv
    srv.close()


@pytest.mark.parametrize("server", ["ok"], indirect=True)
def test_events_are_posted_without_secrets(pytester, server, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    write_suite(pytester, CAMPAIGN.format(url=server.url), test="""
def test_inference(lem_experiment, lem_session, lem_result):
    assert lem_experiment.config.workload.batch_size == 1
    lem_result.record_generation(lem_session.run(lem_session.prepare(lem_experiment.config.workload)))
""")
    pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider").assert_outcomes(passed=1, failed=1)
    events = sorted(b["event"] for b in server.bodies)
    assert events == ["campaign_done", "complete", "failure"]
    assert "hf_secret_value" not in json.dumps(server.bodies)
    failure = next(b for b in server.bodies if b["event"] == "failure")
    assert failure["status"] == "failed" and "assert" in failure["error"]


@pytest.mark.parametrize("server", ["hang", "500"], indirect=True)
def test_a_bad_server_never_fails_or_stalls_the_campaign(pytester, server):
    write_suite(pytester, CAMPAIGN.format(url=server.url))
    start = time.monotonic()
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    elapsed = time.monotonic() - start
    result.assert_outcomes(passed=2)
    assert elapsed < 12  # 0.5 s timeouts x 3 attempts + backoff per event, off the test thread, bounded wait
    assert server.attempts >= 3
    result.stdout.fnmatch_lines(["*webhook * gave up after 3 attempts*"])


def test_non_http_url_is_a_usage_error(pytester):
    write_suite(pytester, CAMPAIGN.format(url="file:///etc/passwd"))
    result = pytester.runpytest("--lem-campaign", "campaign.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*notifications.webhook_url: must be an http(s) URL*"])
    result = pytester.runpytest("--lem-webhook-url", "ftp://x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
