"""The campaign's ``dispatch:`` section: where items run (here, or in a backend's container)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pytest_llenergy.config.base import StrictModel


class DispatchConfig(StrictModel):
    """Where campaign items run: in this process, or each backend in its own container (docs/docker.md)."""

    mode: Literal["local", "docker", "auto"] = Field(
        "local",
        description="local: in this process; docker: every item in its backend's compose service; auto: local when "
        "the backend imports here, else docker when a daemon is available, else skipped with the reason. "
        "`--lem-dispatch` / `lem_dispatch` override it.",
    )
    strategy: Literal["ephemeral", "persistent"] = Field(
        "ephemeral",
        description="ephemeral: `compose run` per item (its container removed after); persistent: `compose up -d` once per service, `exec` per "
        "item, `down` at session end. `--lem-container-strategy` / `lem_container_strategy` override it.",
    )
    keep_containers: bool = Field(
        False, description="Leave persistent containers running at session end (`--lem-keep-containers`)."
    )
    compose_file: str | None = Field(
        None,
        description="Compose file of your own, relative to the pytest rootdir (its `.env` and `secrets.env` beside it). "
        "Default: the one shipped in the package (`lem doctor` prints its folder), with secrets in `.lem/secrets.env`.",
    )
    compose_command: list[str] | None = Field(
        None,
        min_length=1,
        description="Compose command, e.g. `[docker-compose]`; default: `docker compose` (v2), else `docker-compose` (v1).",
    )
    services: dict[str, str] = Field(
        default_factory=dict, description="Backend name to compose service; a backend not listed uses the service of its name."
    )
    project_dir: str = Field("/workspace", description="Where the compose file mounts the project (the rootdir) inside containers.")
    results_dir: str = Field("/results", description="Where the compose file mounts the results root inside containers.")
    pytest_command: list[str] = Field(
        default_factory=lambda: ["pytest"], min_length=1, description="The command that runs pytest inside the containers."
    )
    timeout_s: float | None = Field(
        None, gt=0, description="Kill an item's container after this many seconds (the item fails); default: no limit."
    )
    output_tail_lines: int = Field(60, ge=1, le=10_000, description="Lines of container output kept in a failed item's report.")
    user: str | None = Field(
        None,
        pattern=r"^\d+(:\d+)?$",
        description="`UID:GID` the containers run as (PUID/PGID in the compose file). Default: you; run as root, the "
        "user behind sudo, else the owner of the project, else 1000:1000 - never root unless set here. The run "
        "directory is handed to (or checked against) this user before the first item.",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment for the containers (no secrets: those go in the secrets file, docs/docker.md)."
    )

    @field_validator("project_dir", "results_dir")
    @classmethod
    def _absolute_container_path(cls, value: str) -> str:
        if not value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be an absolute path inside the container, without '..'")
        return value.rstrip("/") or "/"
