"""Options: one table, validated when parsed, one precedence rule (command line > campaign > ini > default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from campaigns import collected_ids, write_suite

from pytest_llenergy.config import CampaignConfig
from pytest_llenergy.config.fields import field_default
from pytest_llenergy.plugin.options import BY_DEST, OPTIONS, help_text, resolve, resolve_layer


class StubConfig:
    """What :func:`resolve` reads from a pytest config: command-line values and ini values."""

    def __init__(self, cli: dict[str, Any] | None = None, ini: dict[str, Any] | None = None) -> None:
        self.cli, self.ini = cli or {}, ini or {}
        self.inipath = Path("pytest.ini")

    def getoption(self, dest: str, default: Any = None) -> Any:
        return self.cli.get(dest, default)

    def getini(self, dest: str) -> Any:
        return self.ini.get(dest, False if BY_DEST[dest].ini == "bool" else "")


def _campaign(path: str, value: Any) -> CampaignConfig:
    data: dict[str, Any] = {"name": "p"}
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return CampaignConfig.model_validate(data)


# Every option that overrides a campaign field: (command-line value, campaign value, ini string, ini parsed).
VALUES: dict[str, tuple[Any, Any, str, Any]] = {
    "lem_order": ("grouped", "shuffled", "interleaved", "interleaved"),
    "lem_seed": (7, 8, "9", 9),
    "lem_cycles": (3, 4, "5", 5),
    "lem_results_dir": ("cli-dir", "campaign-dir", "ini-dir", "ini-dir"),
    "lem_energy_source": ("estimate", "replay", "rapl", "rapl"),
    "lem_sample_hz": (20.0, 30.0, "40", 40.0),
    "lem_gap_experiments": (1.0, 2.0, "3s", 3.0),
    "lem_gap_cycles": (1.0, "adaptive", "250ms", 0.25),
    "lem_gap_max_wait": (10.0, 20.0, "1min", 60.0),
    "lem_group_by": (["precision"], ["backend"], "model.name, precision", ["model.name", "precision"]),
    "lem_webhook_url": ("http://cli", "http://campaign", "https://ini", "https://ini"),
    "lem_dispatch": ("docker", "auto", "docker", "docker"),
    "lem_container_strategy": ("persistent", "persistent", "persistent", "persistent"),
    "lem_grid_intensity": (400.0, 300.0, "100", 100.0),
    "lem_pue": (1.5, 1.2, "1.1", 1.1),
    "lem_price_per_kwh": (0.3, 0.2, "0.1", 0.1),
    "lem_currency": ("EUR", "GBP", "CHF", "CHF"),
}
FLAGS = {  # store_true flags with a campaign twin: campaign value that means "on"
    "lem_force_cold_start": True,
    "lem_keep_containers": True,
    "lem_no_baseline": False,  # inverted: measurement.baseline.enabled: false
}


def test_every_campaign_option_is_covered() -> None:
    assert {o.dest for o in OPTIONS if o.campaign} == set(VALUES) | set(FLAGS)


@pytest.mark.parametrize("dest", sorted(VALUES))
def test_precedence_for_valued_options(dest: str) -> None:
    cli, campaign_value, ini_raw, ini_parsed = VALUES[dest]
    opt = BY_DEST[dest]
    assert opt.campaign is not None
    campaign = _campaign(opt.campaign, campaign_value)
    everything = StubConfig({dest: cli}, {dest: ini_raw})
    assert resolve_layer(everything, dest, campaign) == (cli, "command line")
    from_campaign: Any = campaign
    for part in opt.campaign.split("."):
        from_campaign = getattr(from_campaign, part)
    assert resolve_layer(StubConfig(ini={dest: ini_raw}), dest, campaign) == (from_campaign, "campaign")
    assert from_campaign != ini_parsed or dest == "lem_container_strategy"
    assert resolve_layer(StubConfig(ini={dest: ini_raw}), dest, CampaignConfig(name="p")) == (ini_parsed, "ini")
    assert resolve_layer(StubConfig(), dest, CampaignConfig(name="p")) == (field_default(opt.campaign), "default")
    assert resolve(StubConfig(ini={dest: ini_raw}), dest, None) == ini_parsed  # no campaign at all


@pytest.mark.parametrize("dest", sorted(FLAGS))
def test_precedence_for_flags(dest: str) -> None:
    opt = BY_DEST[dest]
    assert opt.campaign is not None
    on, off = FLAGS[dest], not FLAGS[dest]
    assert resolve(StubConfig({dest: True}), dest, _campaign(opt.campaign, off)) is True  # command line
    assert resolve(StubConfig(ini={dest: True}), dest, _campaign(opt.campaign, off)) is False  # campaign over ini
    assert resolve(StubConfig(ini={dest: True}), dest, _campaign(opt.campaign, on)) is True
    assert resolve(StubConfig(ini={dest: True}), dest, CampaignConfig(name="p")) is True  # ini
    assert resolve(StubConfig(), dest, CampaignConfig(name="p")) is False  # default


def test_options_without_a_campaign_field() -> None:
    assert resolve(StubConfig(), "lem_gpus_per_worker") == 1
    assert resolve(StubConfig(ini={"lem_gpus_per_worker": "2"}), "lem_gpus_per_worker") == 2
    assert resolve(StubConfig({"lem_gpus_per_worker": 4}, {"lem_gpus_per_worker": "2"}), "lem_gpus_per_worker") == 4
    assert resolve(StubConfig(), "lem_storage") == ".lem-benchmarks"
    assert resolve(StubConfig(ini={"lem_resume": True}), "lem_resume") is True
    assert resolve(StubConfig({"lem_compare": ""}), "lem_compare") == ""  # the flag alone: the latest run
    assert resolve(StubConfig(), "lem_compare") is None


def test_help_shows_each_default_and_ini_twin() -> None:
    texts = {o.dest: help_text(o) for o in OPTIONS}
    assert "Default: interleaved." in texts["lem_order"]
    assert "Default: adaptive." in texts["lem_gap_cycles"]
    assert "Default: 120.0." in texts["lem_gap_max_wait"]
    assert "Default: 1." in texts["lem_cycles"]
    for opt in OPTIONS:
        if not opt.help.startswith("Internal"):
            assert "Default: " in texts[opt.dest], opt.flag
        if opt.ini:
            assert f"Ini: {opt.dest}." in texts[opt.dest]
    for dest in ("lem_resume", "lem_save", "lem_compare", "lem_json"):
        assert BY_DEST[dest].ini, dest


BAD_ARGS = [
    (["--lem-cycles", "1000000000"], "*argument --lem-cycles: cycles must be between 1 and 10000"),
    (["--lem-cycles", "0"], "*argument --lem-cycles: cycles must be between 1 and 10000"),
    (["--lem-gap-cycles", "forever"], "*argument --lem-gap-cycles: cannot read 'forever' as a number with a unit"),
    (["--lem-gap-max-wait", "-5"], "*argument --lem-gap-max-wait: a duration cannot be negative (got '-5')"),
    (["--lem-gap-max-wait", "2h"], "*argument --lem-gap-max-wait: Input should be less than or equal to 3600"),
    (["--lem-order", "random"], "*argument --lem-order: invalid choice: 'random'*"),
    (["--lem-seed", "-1"], "*argument --lem-seed: Input should be greater than or equal to 0"),
    (["--lem-shard", "3/2"], "*argument --lem-shard: need 1 <= K <= N, got '3/2'"),
    (["--lem-gpus-per-worker", "0"], "*argument --lem-gpus-per-worker: must be >= 1, got 0"),
    (["--lem-energy-source", "magic"], "*argument --lem-energy-source: unknown energy source 'magic'*"),
    (["--lem-compare-fail", "energy"], "*argument --lem-compare-fail: cannot read 'energy'*"),
    (["--lem-webhook-url", "ftp://x"], "*argument --lem-webhook-url: must be an http(s) URL*"),
    (["--lem-group-by", "nope"], "*argument --lem-group-by: 'nope': unknown key"),
]


@pytest.mark.parametrize(("args", "line"), BAD_ARGS, ids=[a[0] for a, _ in BAD_ARGS])
def test_bad_values_are_refused_when_parsed(pytester: pytest.Pytester, args: list[str], line: str) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([line])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


BAD_INI = [
    ("lem_cycles = 1000000000", "ERROR: llenergy: ini option lem_cycles (tox.ini): cycles must be between 1 and 10000"),
    ("lem_gap_cycles = forever", "ERROR: llenergy: ini option lem_gap_cycles (tox.ini): cannot read 'forever'*"),
    ("lem_gap_max_wait = -5", "ERROR: llenergy: ini option lem_gap_max_wait (tox.ini): a duration cannot be negative*"),
    ("lem_order = random", "ERROR: llenergy: ini option lem_order (tox.ini): Input should be 'interleaved'*"),
    ("lem_no_plots = maybe", "ERROR: llenergy: ini option lem_no_plots (tox.ini): invalid truth value 'maybe'"),
]


@pytest.mark.parametrize(("ini", "line"), BAD_INI, ids=[i for i, _ in BAD_INI])
def test_bad_ini_values_are_refused_up_front(pytester: pytest.Pytester, ini: str, line: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([line])
    assert "Traceback" not in result.stderr.str()


CAMPAIGN = """
name: prec
description: |
  Batch sizes on gpt2,
  two cycles.
cycles: 2
order: grouped
defaults: {model: gpt2}
grid: {shared: {workload.batch_size: [1, 2]}}
measurement: {energy_source: estimate}
"""


def test_campaign_order_beats_the_ini_and_the_command_line_beats_both(pytester: pytest.Pytester) -> None:
    write_suite(pytester, CAMPAIGN)
    pytester.makeini("[pytest]\nlem_order = interleaved\nlem_cycles = 3\n")
    def short(result: pytest.RunResult) -> list[str]:
        return [i.split("-")[0] + "-" + i.split("-")[3] for i in collected_ids(result)]

    first = pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only")
    first.stdout.fnmatch_lines(["llenergy: Batch sizes on gpt2, two cycles."])  # the description, in the header
    grouped = short(pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q"))
    assert grouped == ["c1-bs1", "c2-bs1", "c1-bs2", "c2-bs2"]  # campaign: grouped, 2 cycles (not the ini's 3)
    cli = short(pytester.runpytest("--lem-campaign", "campaign.yaml", "--collect-only", "-q",
                                   "--lem-order", "interleaved", "--lem-cycles", "1"))
    assert cli == ["c1-bs1", "c1-bs2"]


def test_help_shows_single_percent_signs_for_options_and_ini(pytester):
    """argparse help is %-formatted, ini help is not: neither may show `5%%`."""
    out = pytester.runpytest("--help").stdout.str()
    assert "energy_per_output_token:5% tokens_per_s:-10%" in out
    assert "%%" not in out
