"""report.html: self-contained, escaped, with banners, tables, charts and the environment."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from pytest_llenergy.results import RunDirectory, build_outputs, build_report, load, summarize

from .factory import make_config, make_result
from .test_plots import write_series

EVIL = "<script>alert('x')</script>"


@pytest.fixture
def report_run(tmp_path: Path) -> Path:
    """A simulated run with an HTML-hostile model name, a time series and an environment file."""
    run = RunDirectory(tmp_path / "demo" / "run-1")
    write_series(run.path / "timeseries" / "a__c1.parquet")
    for exp, model in (("a-1111", "gpt2"), ("b-2222", EVIL)):
        for c in (1, 2, 3):
            run.write_result(make_result(exp, c, energy_j=100.0 * (1 + 0.01 * c) * (2 if model == EVIL else 1),
                                         config=make_config(model=model), source="replay", simulated=True,
                                         timeseries_path="timeseries/a__c1.parquet" if exp == "a-1111" else None))
    (run.path / "environment.json").write_text(json.dumps({"gpu": {"devices": [{"name": "NVIDIA H200"}]},
                                                           "note": "<b>bold</b>"}))
    return run.path


@pytest.mark.slow
def test_report_is_self_contained_and_escaped(report_run: Path):
    summary = build_outputs(report_run, group_by=["backend"], seed=1, n_resamples=2000)
    html = (report_run / "report.html").read_text()
    assert EVIL not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)  # no external resources
    assert html.count("data:image/png;base64,") == len([k for k in summary.outputs if k.startswith("plot: ")]) >= 5
    assert 'class="banner sim"' in html and "SIMULATED" in html
    assert "NVIDIA H200" in html and "run-1" in html and "seed (statistics)" in html
    assert "b-2222" in html and "a-1111" in html and "Groups by backend" in html


def test_report_without_plots_environment_or_results(tmp_path: Path):
    run = RunDirectory(tmp_path / "run")
    run.write_result(make_result("only", 1))
    summary = summarize(load(run.path), seed=1, n_resamples=200)
    html = build_report(run.path, summary).read_text()
    assert "No environment.json" in html and "banner" not in html.split("<main>")[1].split("<h2>")[0]


def render(chromium: str, page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(chromium: str, report_run: Path, tmp_path: Path):
    build_outputs(report_run, seed=1, n_resamples=2000)
    page = report_run / "report.html"
    dom = render(chromium, page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<table" in dom.stdout and "a-1111" in dom.stdout and "J/out-token adj" in dom.stdout
    for problem in ("Uncaught", "Failed to load resource", "ERROR:CONSOLE"):
        assert problem not in dom.stderr, dom.stderr[-2000:]
    shot = render(chromium, page, tmp_path, "--window-size=1280,1600", f"--screenshot={tmp_path / 'report.png'}")
    assert shot.returncode == 0 and (tmp_path / "report.png").stat().st_size > 10_000
