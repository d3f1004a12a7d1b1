"""Read a campaign file safely: size and structure limits, safe YAML, errors naming file and field."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pytest_llenergy.config.campaign import CampaignConfig
from pytest_llenergy.config.errors import CampaignError, problems_from_validation

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000


def read_campaign_text(path: Path) -> str:
    """The file's text, or a CampaignError for a missing, huge, binary or non-UTF-8 file."""
    source = str(path)
    if not path.exists():
        raise CampaignError(source, ["file not found"])
    if not path.is_file():
        raise CampaignError(source, ["not a regular file"])
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CampaignError(source, [f"file is {size / 1e6:.1f} MB; campaign files are limited to {MAX_FILE_BYTES // 1024 // 1024} MB"])
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CampaignError(source, [f"not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})"]) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:bool":  # YAML 1.1 reads the key `on:` as true
                key_node.tag = "tag:yaml.org,2002:str"
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Safe YAML (no tags, no duplicate keys), errors as line:column, guarded against alias bombs."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CampaignError(source, [f"YAML error at {where}{problem}"]) from None
    if data is None:
        raise CampaignError(source, ["the file is empty"])
    if not isinstance(data, dict):
        raise CampaignError(source, [f"top level must be a mapping of keys, not a {type(data).__name__}"])
    _check_size(data, source)
    return data


def _check_size(data: Any, source: str) -> None:
    """Count nodes with aliases expanded; refuse anchor/alias bombs before anything walks them."""
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise CampaignError(source, [f"more than {MAX_NODES} values once aliases are expanded (alias bomb?)"])
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    raise CampaignError(source, [f"keys must be strings, got {key!r}"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def load_campaign(path: str | Path) -> tuple[CampaignConfig, str]:
    """Validated campaign and a hash of its file's text."""
    path = Path(path)
    text = read_campaign_text(path)
    data = parse_yaml(text, str(path))
    try:
        config = CampaignConfig.model_validate(data)
    except ValidationError as exc:
        raise CampaignError(str(path), problems_from_validation(exc)) from None
    return config, hashlib.sha256(text.encode()).hexdigest()[:12]
