"""``KEY=VALUE`` files beside the compose file: ``.env`` (committed: the pinned versions, read by compose
itself) and ``secrets.env`` (HF_TOKEN ...: mode 0600, never committed, never baked into an image; the
dispatcher passes its names as ``-e NAME`` with the values in the docker client's environment only).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pytest_llenergy.config.files import write_atomically

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")

SECRETS_TEMPLATE = """\
# Secrets for the containers, passed to each item's container at run time as `-e NAME` (never on a
# command line, never baked into an image, never committed: a .gitignore beside it lists it). E.g.:
# HF_TOKEN=hf_...
"""


def parse_env_text(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (comments and blank lines ignored; surrounding quotes removed)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            continue
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def read_env_file(path: Path) -> dict[str, str]:
    try:
        return parse_env_text(Path(path).read_text())
    except FileNotFoundError:
        return {}


def _atomic_write(path: Path, text: str, mode: int) -> None:
    """Owner-only while written; ``mode`` once renamed into place (config.files.write_atomically)."""
    write_atomically(path, lambda partial: partial.write_text(text), mode)


def ensure_secrets_file(path: Path, own_folder: bool = False) -> bool:
    """Create an empty, commented, owner-only secrets file when there is none (where to put HF_TOKEN).

    ``own_folder``: the folder is ours alone (``.lem/``): a ``.gitignore`` there keeps all of it out of git."""
    path = Path(path)
    if own_folder and not (path.parent / ".gitignore").exists():
        _atomic_write(path.parent / ".gitignore", "# pytest-llenergy's local state (secrets): never committed\n*\n", 0o644)
    if path.exists():
        return False
    _atomic_write(path, SECRETS_TEMPLATE, 0o600)
    return True


def _git_ignores(path: Path) -> bool | None:
    """Whether git ignores ``path`` (None: not in a git work tree, or no git)."""
    try:
        done = subprocess.run(["git", "check-ignore", "-q", "--no-index", path.name], cwd=path.parent,
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {0: True, 1: False}.get(done.returncode)


def ensure_git_ignored(path: Path) -> bool:
    """Make sure git never commits the secrets file ``path``: unless git already ignores it, add its name
    to the ``.gitignore`` beside it (created if missing). True when that file was changed."""
    path = Path(path)
    ignore = path.parent / ".gitignore"
    try:
        lines = ignore.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    if path.name in lines or f"/{path.name}" in lines or _git_ignores(path):
        return False
    text = "\n".join(lines) + ("\n" if lines else "") + f"# pytest-llenergy: secrets for the containers, never committed\n{path.name}\n"
    _atomic_write(ignore, text, ignore.stat().st_mode & 0o777 if ignore.exists() else 0o644)
    return True
