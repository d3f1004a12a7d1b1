"""Regenerate the generated docs; ``--check`` exits 1 when any is stale."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's package, installed or not


def generated() -> dict[Path, Callable[[], str]]:
    from pytest_llenergy.config.reference import render_reference

    docs: dict[Path, Callable[[], str]] = {ROOT / "docs" / "campaign-reference.md": render_reference}
    try:
        from pytest_llenergy.backends.introspection import render_parameters_doc
    except ImportError:
        pass
    else:
        docs[ROOT / "docs" / "parameters.md"] = render_parameters_doc
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when a generated doc is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, render in generated().items():
        text = render()
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    for path in stale:
        print(f"stale: {path.relative_to(ROOT)} (run: python scripts/gen_docs.py)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
