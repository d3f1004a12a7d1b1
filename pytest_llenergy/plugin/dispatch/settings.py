"""Dispatch settings from options, ini and the campaign's ``dispatch`` section (no hooks here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_llenergy.config.campaign import CampaignConfig
from pytest_llenergy.dispatch import DispatchSettings, PathMap, project_name
from pytest_llenergy.dispatch.files import shipped_compose_file
from pytest_llenergy.dispatch.preflight import container_user
from pytest_llenergy.plugin.base import dispatch_mode as dispatch_mode
from pytest_llenergy.plugin.options import resolve
from pytest_llenergy.plugin.state import LemRun


def dispatch_section(run: LemRun | None) -> Any:
    """The campaign's ``dispatch`` section, else the defaults."""
    from pytest_llenergy.config.dispatch import DispatchConfig

    section = getattr(run.plan.campaign, "dispatch", None) if run is not None else None
    return section if section is not None else DispatchConfig()


def _campaign(run: LemRun | None) -> CampaignConfig | None:
    return run.plan.campaign if run is not None else None


def container_strategy(config: pytest.Config, run: LemRun | None) -> str:
    return str(resolve(config, "lem_container_strategy", _campaign(run)))


def keep_containers(config: pytest.Config, run: LemRun | None) -> bool:
    return bool(resolve(config, "lem_keep_containers", _campaign(run)))


def campaign_path(config: pytest.Config) -> Path | None:
    """The campaign file on the host, resolved as ``create_run`` resolves it."""
    raw = resolve(config, "lem_campaign")
    if not raw:
        return None
    path = Path(raw)
    if not path.is_absolute():
        base = Path(config.invocation_params.dir)
        path = base / path if (base / path).exists() else config.rootpath / path
    return path.resolve()


def _worker_id(config: pytest.Config) -> str:
    worker = getattr(config, "workerinput", None)
    return str(worker.get("workerid", "")) if isinstance(worker, dict) else ""


SECRETS_DIR = ".lem"
"""In the rootdir: the secrets file when the shipped compose file is used (never inside the package)."""


def compose_file(config: pytest.Config, section: Any) -> Path:
    """``dispatch.compose_file`` (relative to the rootdir), else the compose file shipped in the package."""
    if not section.compose_file:
        return shipped_compose_file()
    path = Path(section.compose_file).expanduser()
    return path if path.is_absolute() else config.rootpath / path


def build_settings(config: pytest.Config, run: LemRun) -> DispatchSettings:
    from pytest_llenergy import __version__

    section = dispatch_section(run)
    uid, gid = container_user(section.user, os.getuid(), os.getgid(), os.environ, config.rootpath)
    compose = compose_file(config, section)
    return DispatchSettings(
        compose_file=compose,
        secrets_path=None if section.compose_file else config.rootpath / SECRETS_DIR / "secrets.env",
        project=project_name("lem", run.run_id, _worker_id(config)),
        paths=PathMap(config.rootpath, section.project_dir, run.results_root, section.results_dir),
        strategy=container_strategy(config, run),  # type: ignore[arg-type]
        keep_containers=keep_containers(config, run),
        services=dict(section.services),
        compose_command=section.compose_command,
        timeout_s=section.timeout_s,
        output_tail_lines=section.output_tail_lines,
        extra_env=dict(section.env),
        plugin_version=__version__,
        uid=uid,
        gid=gid,
        cwd=Path(config.invocation_params.dir),
        run_dir=run.run_dir.path,
    )
