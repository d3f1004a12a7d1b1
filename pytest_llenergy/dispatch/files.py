"""The docker files shipped inside the package (``pytest_llenergy/docker/``): compose files, the pinned
versions (``.env``), the Dockerfiles and their install script. Dispatch uses them from the installed
package, so a ``pip install`` needs no clone; building the images needs the plugin's source (a checkout
or an unpacked sdist), because the images install the plugin from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path

from pytest_llenergy.dispatch.errors import DispatchError

BACKENDS = ("transformers", "vllm", "tensorrt")
SHIPPED = (
    "compose.yaml",
    "compose.build.yaml",
    ".env",
    "constraints.txt",
    "install-plugin.sh",
    *(f"{backend}.Dockerfile" for backend in BACKENDS),
    *(f"{backend}.Dockerfile.dockerignore" for backend in BACKENDS),
)
"""Every file of ``pytest_llenergy/docker/`` that the wheel must contain."""

BUILD_CONTEXT_VAR = "LEM_BUILD_CONTEXT"
"""Where ``compose.build.yaml`` finds the plugin's source (default: two folders above it, a checkout's root)."""


def docker_dir() -> Path:
    """The installed package's ``docker/`` folder (a real directory: compose needs file paths)."""
    found = files("pytest_llenergy").joinpath("docker")
    if not isinstance(found, Path):
        raise DispatchError(f"pytest_llenergy is not installed as files ({found}); its docker files need a real folder")
    return found


def shipped_compose_file() -> Path:
    return docker_dir() / "compose.yaml"


def missing_files(directory: Path | None = None) -> list[str]:
    """The shipped files absent from ``directory`` (default: the installed package's)."""
    directory = docker_dir() if directory is None else directory
    return [name for name in SHIPPED if not (directory / name).is_file()]


def build_context(build_file: Path, environ: Mapping[str, str]) -> Path:
    """The build context ``compose.build.yaml`` uses: ``$LEM_BUILD_CONTEXT``, else two folders above it."""
    raw = environ.get(BUILD_CONTEXT_VAR)
    if raw:
        return Path(raw).expanduser().resolve()
    return (build_file.parent / ".." / "..").resolve()


def build_context_problem(build_file: Path, environ: Mapping[str, str]) -> str | None:
    """Why ``compose.build.yaml`` cannot build here (its context is not the plugin's source), else None."""
    context = build_context(build_file, environ)
    if (context / "pyproject.toml").is_file() and (context / "pytest_llenergy").is_dir():
        return None
    return (f"the images install pytest-llenergy from its source, and {context} is not one: set "
            f"{BUILD_CONTEXT_VAR} to a checkout or an unpacked sdist of this version (it needs pyproject.toml)")
