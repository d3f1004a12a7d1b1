"""Write docs/parameters.md from the config models; ``--check`` exits 1 when the file is stale.

Usage: python scripts/gen_parameters_doc.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "parameters.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail (exit 1) when docs/parameters.md is stale")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from pytest_llenergy.backends.introspection import render_parameters_doc

    text = render_parameters_doc()
    if args.check:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(f"stale: {TARGET.relative_to(ROOT)} (run: python scripts/gen_parameters_doc.py)")
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
