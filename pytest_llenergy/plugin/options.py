"""Every ``--lem-*`` option, declared once: flag, ini twin, campaign field, parser and default.

Values are parsed and validated when the command line is parsed (argparse ``type=``), with the
same bounds as the campaign schema for options that override a campaign field; ini values go
through the same parser when pytest configures. One precedence rule for every setting,
implemented by :func:`resolve`: command line > campaign file (when it sets the field) > ini file
> the default (the campaign model's default for campaign fields).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pytest

from pytest_llenergy.plugin.option_table import FIELDS

if TYPE_CHECKING:
    from pytest_llenergy.config.campaign import CampaignConfig

# Nothing heavy at import: this module loads with every pytest run of the venv (the campaign schema,
# pydantic and the results layer are imported by the parsers, only for options that are given).
Parser = Callable[[str], Any]
UNSET: Any = object()  # "not given" (for the command line and the ini file)
DEFAULT_ALPHA = 0.01  # results.compare.DEFAULT_ALPHA (tests/test_plugin_import.py checks they agree)


def validate_field(path: str, raw: Any) -> Any:
    from pytest_llenergy.config.fields import validate_field as validate

    return validate(path, raw)


def _field(path: str) -> Parser:
    """Parse a value as the campaign field ``path`` would be parsed from YAML."""
    return lambda raw: validate_field(path, raw)


def _at_least(minimum: int) -> Parser:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if value < minimum:
            raise ValueError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _shard(raw: str) -> str:
    from pytest_llenergy.config.sharding import ShardSpec

    return str(ShardSpec.parse(raw))


def _group_by(raw: str) -> list[str]:
    return list(validate_field("group_by", [p.strip() for p in raw.split(",") if p.strip()]))


def _rules(raw: str) -> str:
    from pytest_llenergy.results.compare import parse_rules

    parse_rules(raw)
    return raw


def _false_alarm_rate(raw: str) -> float:
    try:
        alpha = float(raw)
    except ValueError:
        alpha = math.nan
    if not 0 < alpha < 0.5:
        raise ValueError(f"{raw!r} is not a probability between 0 and 0.5 (e.g. 0.01: at most 1 % false alarms)")
    return alpha


def _json(raw: str) -> str:
    try:
        json.loads(raw)
    except ValueError:
        raise ValueError(f"not JSON: {raw!r}") from None
    return raw


@dataclass(frozen=True)
class Option:
    """One ``--lem-*`` flag, its ``lem_*`` ini twin and the campaign field it overrides."""

    flag: str
    help: str
    parse: Parser | None = None  # None: any string (or a store_true flag)
    ini: Literal["string", "bool"] | None = "string"
    campaign: str | None = None  # dotted CampaignConfig field the option overrides
    default: Any = None  # used when no campaign field gives one
    shown_default: str | None = None  # what --help says the default is, when not the value itself
    is_flag: bool = False  # store_true
    invert: bool = False  # the flag means "not <campaign field>"
    metavar: str | None = None
    optional_value: bool = False  # nargs="?": the flag alone means ""

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def choices(self) -> tuple[str, ...] | None:
        return FIELDS[self.campaign][1] if self.campaign else None

    def default_value(self) -> Any:
        if self.campaign:
            value = copy.copy(FIELDS[self.campaign][0])
            return (not value) if self.invert else value
        return self.default


def _internal(flag: str, help: str, parse: Parser | None = None, **kwargs: Any) -> Option:
    return Option(flag, "Internal: " + help, parse, ini=None, **kwargs)


OPTIONS: tuple[Option, ...] = (
    # campaign and run identity
    Option("--lem-campaign", "Campaign YAML whose experiments become test items.", metavar="PATH",
           shown_default="none (the pytest_lem_default_campaign hook may name one)"),
    Option("--lem-order", "Item order across cycles.", _field("order"), campaign="order"),
    Option("--lem-seed", "Seed for shuffled order and statistics.", _field("seed"), campaign="seed",
           metavar="INT", shown_default="drawn at random and printed"),
    Option("--lem-cycles", "Number of cycles (1-10000).", _field("cycles"), campaign="cycles", metavar="N"),
    Option("--lem-shard", "Run shard K of N (experiments balanced by predicted cost), e.g. for a Slurm job array.", _shard,
           metavar="K/N", shown_default="all experiments"),
    Option("--lem-results-dir", "Directory for run directories (relative to the invocation directory).",
           campaign="results_dir", metavar="DIR", shown_default="the campaign's results_dir (lem-results) in the rootdir"),
    Option("--lem-resume", "Continue the last run of this campaign: run only items without a passed result.",
           ini="bool", is_flag=True, default=False),
    Option("--lem-resume-reset", "Forget the saved run state of this campaign (results stay on disk).",
           ini=None, is_flag=True, default=False),
    # measurement
    Option("--lem-energy-source", "Energy source: auto, nvml, rapl, estimate, replay or replay:PATH.",
           _field("measurement.energy_source"), campaign="measurement.energy_source", metavar="SPEC"),
    Option("--lem-sample-hz", "Background sampling rate, 1-100 Hz.", _field("measurement.sample_hz"),
           campaign="measurement.sample_hz", metavar="HZ"),
    Option("--lem-baseline-refresh", "Measure a fresh idle baseline instead of the cached one.", ini="bool",
           is_flag=True, default=False),
    Option("--lem-no-baseline", "Do not measure or subtract an idle baseline.", ini="bool", is_flag=True,
           campaign="measurement.baseline.enabled", invert=True),
    Option("--lem-gap-experiments", "Gap before each item: seconds ('10s') or 'adaptive'.",
           _field("gaps.between_experiments"), campaign="gaps.between_experiments", metavar="GAP"),
    Option("--lem-gap-cycles", "Gap before a new cycle (replaces the experiment gap): seconds or 'adaptive'.",
           _field("gaps.between_cycles"), campaign="gaps.between_cycles", metavar="GAP"),
    Option("--lem-gap-max-wait", "Longest adaptive gap (seconds, 0-3600).", _field("gaps.max_wait"),
           campaign="gaps.max_wait", metavar="S"),
    Option("--lem-force-cold-start", "Unload, free memory and reload the model for every item.", ini="bool",
           is_flag=True, campaign="force_cold_start"),
    Option("--lem-gpus-per-worker", "GPUs per xdist worker (-n auto starts visible GPUs / K workers).",
           _at_least(1), default=1, metavar="K"),
    # reporting
    Option("--lem-group-by", "Comma-separated config paths grouping experiments for group CIs.", _group_by,
           campaign="group_by", metavar="PATHS"),
    Option("--lem-no-plots", "Skip the PNG plots (the summary and report are still written).", ini="bool",
           is_flag=True, default=False),
    Option("--lem-json", "Write a machine-readable report of the run, its statistics and verdicts.",
           metavar="PATH", shown_default="none"),
    Option("--lem-webhook-url", "POST item failures and the campaign's end to this http(s) URL.",
           _field("notifications.webhook_url"), campaign="notifications.webhook_url", metavar="URL"),
    # carbon and cost of the measured energy
    Option("--lem-grid-intensity", "Grid carbon intensity in gCO2e/kWh, for emissions per item and summary row.",
           _field("carbon.grid_intensity_g_per_kwh"), campaign="carbon.grid_intensity_g_per_kwh", metavar="G"),
    Option("--lem-pue", "Power usage effectiveness of the facility (1.0-5.0).", _field("carbon.pue"),
           campaign="carbon.pue", metavar="PUE"),
    Option("--lem-price-per-kwh", "Electricity price per kWh, for cost per item and summary row.",
           _field("carbon.price_per_kwh"), campaign="carbon.price_per_kwh", metavar="PRICE"),
    Option("--lem-currency", "Currency of --lem-price-per-kwh.", _field("carbon.currency"),
           campaign="carbon.currency", metavar="CODE"),
    # saved runs and comparison
    Option("--lem-save", "Save this run's summary under .lem-benchmarks/<machine id>/NNNN_<NAME>.json.",
           metavar="NAME", shown_default="not saved"),
    Option("--lem-autosave", "Save every run (named after the campaign).", ini="bool", is_flag=True, default=False),
    Option("--lem-compare", "Compare with a saved run: its number, name or path (the latest when no value or 'latest').",
           metavar="NAME|NUM", optional_value=True, shown_default="no comparison"),
    Option("--lem-compare-fail", "Fail tests whose metric regresses: 'energy_per_output_token:5%% tokens_per_s:-10%%'.",
           _rules, metavar="RULES", shown_default="none"),
    Option("--lem-compare-alpha", "False-alarm rate of --lem-compare-fail: fail when the one-sided p-value is "
           "below P.", _false_alarm_rate, metavar="P", default=DEFAULT_ALPHA),
    Option("--lem-storage", "Where saved runs live (relative to the rootdir).", metavar="DIR",
           default=".lem-benchmarks"),
    # dispatch
    Option("--lem-dispatch", "Where campaign items run: local (this process), docker (each backend's compose "
           "service), auto (local when the backend imports, else docker, else skip).",
           _field("dispatch.mode"), campaign="dispatch.mode"),
    Option("--lem-container-strategy", "ephemeral: `compose run` per item (its container removed after); persistent: `compose up -d` once "
           "per service and `exec` per item.", _field("dispatch.strategy"), campaign="dispatch.strategy"),
    Option("--lem-keep-containers", "Leave persistent containers running at session end.", ini="bool",
           is_flag=True, campaign="dispatch.keep_containers"),
    # set by a controller for the processes it starts
    _internal("--lem-run-id", "write into this run id's directory (chosen by the controller).", metavar="ID"),
    _internal("--lem-seed-drawn", "the seed was drawn by the dispatching controller.", is_flag=True, default=False),
    _internal("--lem-dispatched", "this pytest runs items dispatched by a controller (no manifest, no resume "
              "state, no summary).", is_flag=True, default=False),
    _internal("--lem-dispatch-report", "write this run's item reports to PATH as JSON.", metavar="PATH"),
    _internal("--lem-dispatch-gap", "the thermal gap the host waited before this item.", _json, metavar="JSON"),
    _internal("--lem-dispatch-serve", "serve items one by one over stdin/stdout (a persistent container's worker).",
              is_flag=True, default=False),
)
BY_DEST: dict[str, Option] = {opt.dest: opt for opt in OPTIONS}


def _argparse_type(opt: Option) -> Parser:
    parse = opt.parse
    assert parse is not None

    def convert(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = opt.dest
    return convert


def help_text(opt: Option) -> str:
    """The option's help: what it does, what it overrides, its ini twin and its default."""
    parts = [opt.help]
    if opt.campaign:
        parts.append(f"Overrides the campaign's `{opt.campaign}`.")
    if opt.ini:
        parts.append(f"Ini: {opt.dest}.")
    if not opt.help.startswith("Internal"):
        default = opt.shown_default
        if default is None:
            value = opt.default_value()
            if opt.is_flag:
                default = "on" if value else "off"
            else:
                default = "none" if value in (None, [], "") else str(value)
        parts.append(f"Default: {default}.")
    return " ".join(parts)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Every ``--lem-*`` option and ``lem_*`` ini value, from ``OPTIONS``."""
    group = parser.getgroup("llenergy", "LLM energy measurement (pytest-llenergy)")
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": opt.dest, "help": help_text(opt)}
        if opt.is_flag:
            kwargs.update(action="store_true", default=False)
        else:
            kwargs["default"] = None
            if opt.choices:
                kwargs["choices"] = opt.choices
            elif opt.metavar:
                kwargs["metavar"] = opt.metavar
            if opt.parse is not None and not opt.choices:
                kwargs["type"] = _argparse_type(opt)
            if opt.optional_value:
                kwargs.update(nargs="?", const="")
        group.addoption(opt.flag, **kwargs)
        if opt.ini:
            parser.addini(opt.dest, opt.help.replace("%%", "%"), type=opt.ini, default=False if opt.ini == "bool" else "")


def ini_value(config: pytest.Config, opt: Option) -> Any:
    """The option's ini value, parsed; UNSET when the ini file does not set it (or sets a flag false)."""
    if not opt.ini:
        return UNSET
    where = f"ini option {opt.dest}" + (f" ({config.inipath.name})" if config.inipath else "")
    try:
        raw = config.getini(opt.dest)
    except (ValueError, pytest.UsageError) as exc:  # pytest >= 9.2 raises UsageError for a bad bool
        raise pytest.UsageError(f"llenergy: {where}: {exc}") from None
    if opt.is_flag:
        return True if raw else UNSET
    if raw in ("", None):
        return UNSET
    if opt.parse is None:
        return raw
    try:
        return opt.parse(str(raw))
    except ValueError as exc:
        raise pytest.UsageError(f"llenergy: {where}: {exc}") from None


def command_line_value(config: pytest.Config, opt: Option) -> Any:
    """The option's command-line value; UNSET when not given."""
    value = config.getoption(opt.dest, None)
    if value is None or value is False or (value == "" and not opt.optional_value):
        return UNSET
    return value


Layer = Literal["command line", "campaign", "ini", "default"]


def resolve_layer(config: pytest.Config, dest: str, campaign: CampaignConfig | None = None) -> tuple[Any, Layer]:
    """A setting and where it came from, by the one precedence rule:
    command line > campaign file (when it sets the field) > ini file > default."""
    opt = BY_DEST[dest]
    value = command_line_value(config, opt)
    if value is not UNSET:
        return value, "command line"
    if campaign is not None and opt.campaign:
        from pytest_llenergy.config import fields

        value = fields.explicit_value(campaign, opt.campaign)
        if value is not fields.UNSET:
            return ((not value) if opt.invert else value), "campaign"
    value = ini_value(config, opt)
    if value is not UNSET:
        return value, "ini"
    return opt.default_value(), "default"


def resolve(config: pytest.Config, dest: str, campaign: CampaignConfig | None = None) -> Any:
    """A setting by the one precedence rule: command line > campaign file > ini file > default."""
    return resolve_layer(config, dest, campaign)[0]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Validate every ini twin before anything else uses it: a bad value is one usage error."""
    for opt in OPTIONS:
        ini_value(config, opt)
