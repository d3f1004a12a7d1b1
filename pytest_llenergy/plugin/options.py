"""Command-line options, each with an ini twin, in one ``llenergy`` group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class Option:
    """One ``--lem-*`` flag and its ``lem_*`` ini twin."""

    flag: str
    help: str
    ini_type: str | None = "string"
    default: Any = None
    action: str | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("--lem-campaign", "Campaign YAML whose experiments become test items.", "string", metavar="PATH"),
    Option("--lem-order", "Item order across cycles (overrides the campaign).", "string",
           choices=("interleaved", "shuffled", "grouped")),
    Option("--lem-seed", "Seed for shuffled order and statistics (overrides the campaign).", "string", metavar="INT"),
    Option("--lem-cycles", "Number of cycles (overrides the campaign).", "string", metavar="N"),
    Option("--lem-resume", "Continue the last run of this campaign: run only items without a passed result.",
           None, action="store_true"),
    Option("--lem-resume-reset", "Forget the saved run state of this campaign (results stay on disk).",
           None, action="store_true"),
    Option("--lem-run-id", "Write into this run id's directory (used for dispatched items; normally chosen by the controller).",
           None, metavar="ID"),
    Option("--lem-seed-drawn", "Internal: the seed was drawn by the dispatching controller.", None, action="store_true"),
    Option("--lem-dispatched", "Internal: this pytest runs items dispatched by a controller (no manifest, no resume state, no summary).",
           None, action="store_true"),
    Option("--lem-energy-source", "Energy source: auto, nvml, rapl, estimate, replay or replay:PATH.", "string",
           metavar="SPEC"),
    Option("--lem-sample-hz", "Background sampling rate, 1-100 Hz.", "string", metavar="HZ"),
    Option("--lem-baseline-refresh", "Measure a fresh idle baseline instead of the cached one.", None,
           action="store_true"),
    Option("--lem-no-baseline", "Do not measure or subtract an idle baseline.", "bool", action="store_true"),
    Option("--lem-gap-experiments", "Gap before each item: seconds ('10s') or 'adaptive'.", "string", metavar="GAP"),
    Option("--lem-gap-cycles", "Gap before a new cycle (replaces the experiment gap): seconds or 'adaptive'.", "string",
           metavar="GAP"),
    Option("--lem-gap-max-wait", "Longest adaptive gap (seconds).", "string", metavar="S"),
    Option("--lem-force-cold-start", "Unload, free memory and reload the model for every item.", "bool",
           action="store_true"),
    Option("--lem-gpus-per-worker", "GPUs per xdist worker (-n auto starts visible GPUs / K workers).", "string",
           metavar="K"),
    Option("--lem-shard", "Run shard K of N (every N-th experiment), e.g. for a Slurm job array.", "string",
           metavar="K/N"),
    Option("--lem-results-dir", "Directory for run directories (default: the campaign's results_dir).", "string",
           metavar="DIR"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llenergy", "LLM energy measurement (pytest-llenergy)")
    for opt in OPTIONS:
        twin = f" Ini: {opt.dest}." if opt.ini_type else ""
        kwargs: dict[str, Any] = {"dest": opt.dest, "help": opt.help + twin}
        if opt.action:
            kwargs["action"] = opt.action
        else:
            kwargs["default"] = None
            if opt.choices:
                kwargs["choices"] = opt.choices
            if opt.metavar:
                kwargs["metavar"] = opt.metavar
        group.addoption(opt.flag, **kwargs)
        if opt.ini_type:
            parser.addini(opt.dest, opt.help, type=opt.ini_type, default=opt.default)


def flag(config: pytest.Config, dest: str) -> bool:
    """A store_true option, or its bool ini twin."""
    if config.getoption(dest, False):
        return True
    try:
        return bool(config.getini(dest))
    except ValueError:
        return False


def setting(config: pytest.Config, dest: str) -> Any:
    """The flag's value when given, else its ini twin's, else None."""
    value = config.getoption(dest, None)
    if value not in (None, False, "", []):
        return value
    try:
        ini = config.getini(dest)
    except (ValueError, KeyError):
        return value
    return ini if ini not in ("", [], None) else value
