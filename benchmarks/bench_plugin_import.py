"""What the installed plugin costs a pytest run that does not use it (issue 26, finding 7).

    python benchmarks/bench_plugin_import.py [--runs 7]

Runs a one-test file (no ``energy`` fixture, no campaign) with and without ``-p no:llenergy``,
alternating, and prints the median wall time of each, the overhead (the target is under 0.2 s) and
the heavy libraries a plain run imports (pandas, scipy, numpy, pydantic, matplotlib, pyarrow, yaml,
torch, transformers), read from ``sys.modules`` at session end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "scipy", "numpy", "pydantic", "matplotlib", "pyarrow", "yaml", "torch", "transformers")
TARGET_S = 0.2
TEST = "def test_plain():\n    assert 1 + 1 == 2\n"
CONFTEST = f'''
import json, os, sys

def pytest_sessionfinish(session):
    path = os.environ.get("LEM_BENCH_MODULES")
    if path:
        with open(path, "w") as f:
            json.dump([m for m in {HEAVY!r} if m in sys.modules], f)
'''


def one_run(folder: Path, disabled: bool, modules: Path | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if modules is not None:
        env["LEM_BENCH_MODULES"] = str(modules)
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py"]
    if disabled:
        args[3:3] = ["-p", "no:llenergy"]
    began = time.perf_counter()
    proc = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"pytest failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_plain.py").write_text(TEST)
        (folder / "conftest.py").write_text(CONFTEST)
        one_run(folder, False)  # warm the file cache
        with_plugin, without = [], []
        for _ in range(args.runs):
            with_plugin.append(one_run(folder, False))
            without.append(one_run(folder, True))
        found = folder / "modules.json"
        one_run(folder, False, found)
        heavy = json.loads(found.read_text())
        found_off = folder / "modules-off.json"
        one_run(folder, True, found_off)
        baseline = set(json.loads(found_off.read_text()))
    on, off = statistics.median(with_plugin), statistics.median(without)
    print(f"one-test file, median of {args.runs} runs (alternating):")
    print(f"  with the plugin          {on:.3f} s")
    print(f"  with -p no:llenergy      {off:.3f} s")
    print(f"  overhead                 {on - off:+.3f} s  (target < {TARGET_S} s: "
          f"{'met' if on - off < TARGET_S else 'NOT met'}), ratio {on / off:.2f}")
    added = [m for m in heavy if m not in baseline]
    print(f"  heavy libraries the plugin imports in a plain run: {', '.join(added) or 'none'}"
          f" (already imported without it: {', '.join(sorted(baseline)) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
