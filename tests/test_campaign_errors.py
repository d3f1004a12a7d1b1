"""Malformed and hostile campaigns: a one-screen usage error (exit 4) naming file and field; nothing runs."""

from __future__ import annotations

import fnmatch

import pytest
from campaign_corpus import CORPUS
from campaigns import write_suite

OK = "name: ok\ndefaults: {model: gpt2}\n"


@pytest.mark.parametrize("case,text,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_campaign_is_a_short_usage_error(pytester, case, text, expected):
    path = write_suite(pytester, "")
    path.write_text(text)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: llenergy: *campaign.yaml*"])
    assert fnmatch.fnmatch(result.stderr.str(), expected), result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert len(result.stderr.lines) < 25
    assert not (pytester.path / "lem-results").exists()
    assert not (pytester.path / "pwned").exists()


def test_non_utf8_bytes(pytester):
    path = write_suite(pytester, "")
    path.write_bytes(b"name: caf\xe9\ndefaults: {model: gpt2}\n")
    result = pytester.runpytest("--lem-campaign", "campaign.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*campaign.yaml: not UTF-8 text (byte 9*"])


def test_huge_file_is_refused_before_parsing(pytester):
    path = write_suite(pytester, "")
    with path.open("w") as handle:
        handle.write("name: x\ndescription: '")
        handle.write("a" * (50 * 1024 * 1024))
        handle.write("'\n")
    result = pytester.runpytest("--lem-campaign", "campaign.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*file is 52.4 MB; campaign files are limited to 2 MB*"])


def test_missing_file(pytester):
    write_suite(pytester, OK)
    result = pytester.runpytest("--lem-campaign", "nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nope.yaml: file not found*"])


def test_results_dir_escaping_through_a_symlink(pytester, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (pytester.path / "escape").symlink_to(outside)
    write_suite(pytester, OK + "results_dir: escape/results\n")
    result = pytester.runpytest("--lem-campaign", "campaign.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*results_dir: 'escape/results' resolves to *, outside * (symlink?)*"])
    assert not any(outside.iterdir())


def test_bad_cycles_option(pytester):
    write_suite(pytester, OK)
    result = pytester.runpytest("--lem-campaign", "campaign.yaml", "--lem-cycles", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lem-cycles: cycles must be between 1 and 10000*"])
