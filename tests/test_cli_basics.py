"""`lem --version`, help on every argument, quiet on a closed pipe."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llenergy.cli import build_parser, main

ROOT = Path(__file__).parents[1]


def _parsers(parser: argparse.ArgumentParser, path: str = "lem"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_argument_has_help():
    missing = [f"{path}: {a.dest}" for path, parser in _parsers(build_parser()) for a in parser._actions
               if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction) and not a.help]
    assert missing == []


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("lem (pytest-llenergy) ")


def test_closed_pipe_ends_quietly():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = f"{sys.executable} -c 'from pytest_llenergy.cli import main; raise SystemExit(main())' config params | head -1"
    done = subprocess.run(["bash", "-c", cmd.replace("main())'", "main())' ")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip()
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
