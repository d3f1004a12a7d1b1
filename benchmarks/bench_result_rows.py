"""How many times a campaign turns a result into its flat row (``results.frame.result_row``), and how
many result files it parses, for the fixed replay campaign of tests/test_replay_golden.py (6 items).

Issue 30: the row the gate computes when an item ends is kept (``RunDirectory.rows``) and reused by the
budgets' history, adaptive cycles, the summary and the saved run. Run it against two checkouts side by
side and compare the counts::

    PYTHONPATH=/path/to/old python benchmarks/bench_result_rows.py
    PYTHONPATH=/path/to/new python benchmarks/bench_result_rows.py
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"

COUNTER = '''
import importlib.util, sys, atexit
from pathlib import Path

spec = importlib.util.spec_from_file_location("virtual_clock", {clock!r})
clock = importlib.util.module_from_spec(spec)
sys.modules["virtual_clock"] = clock
spec.loader.exec_module(clock)
clock.install(Path.cwd())

from pytest_llenergy.results import frame, store
counts = {{"result_row": 0, "parsed": 0}}
real_row, real_parse = frame.result_row, store.load_result_file

def counted_row(*args, **kwargs):
    counts["result_row"] += 1
    return real_row(*args, **kwargs)

def counted_parse(path):
    counts["parsed"] += 1
    return real_parse(path)

frame.result_row = counted_row
frame.load_result_file = store.load_result_file = counted_parse
import pytest

code = pytest.main(["--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider", "-q", "--lem-no-plots"])
print("LEM_COUNTS", counts["result_row"], counts["parsed"])
'''


def main() -> int:
    spec = importlib.util.spec_from_file_location("golden", TESTS / "test_replay_golden.py")
    assert spec is not None and spec.loader is not None
    golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(golden)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "conftest.py").write_text(golden.CONFTEST)
        (root / "test_suite.py").write_text(golden.TEST)
        (root / "campaign.yaml").write_text(golden.CAMPAIGN)
        code = COUNTER.format(clock=str(TESTS / "virtual_clock.py"))
        done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("LEM_COUNTS")), None)
        if line is None:
            print(done.stdout[-3000:], done.stderr[-3000:])
            return 1
        rows, parsed = map(int, line.split()[1:])
        items = len(list((root / "lem-results").rglob("experiments/*.json")))
    import pytest_llenergy

    print(f"{pytest_llenergy.__file__}: {items} result files; result_row ran {rows} times "
          f"({rows / items:.2f} per result), result files parsed {parsed} times ({parsed / items:.2f} per result)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
