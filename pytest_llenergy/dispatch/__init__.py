"""Container dispatch: run a campaign item in its backend's compose service (no pytest in here).

``plugin/dispatch/hooks.py`` is the pytest side; this package finds docker and compose, checks images,
writes the compose ``.env``, routes GPUs and builds and runs the compose commands.
"""

from pytest_llenergy.dispatch.command import ItemCommand, PathMap, forwarded_options
from pytest_llenergy.dispatch.compose import (
    ComposeCommand,
    ComposeProject,
    container_name,
    detect_compose,
    project_name,
)
from pytest_llenergy.dispatch.dispatcher import ContainerDispatcher, DispatchSettings
from pytest_llenergy.dispatch.docker import ImageInfo, daemon_version, image_info
from pytest_llenergy.dispatch.envfile import ensure_secrets_file, read_env_file
from pytest_llenergy.dispatch.errors import DispatchError, describe_exit
from pytest_llenergy.dispatch.gpus import GpuRoute, parse_visible, route_gpus
from pytest_llenergy.dispatch.outcome import ContainerRun
from pytest_llenergy.dispatch.preflight import Preflight, ServiceInfo
from pytest_llenergy.dispatch.process import Completed, Runner, run_command

__all__ = [
    "Completed",
    "ComposeCommand",
    "ComposeProject",
    "ContainerDispatcher",
    "ContainerRun",
    "DispatchError",
    "DispatchSettings",
    "GpuRoute",
    "ImageInfo",
    "ItemCommand",
    "PathMap",
    "Preflight",
    "Runner",
    "ServiceInfo",
    "container_name",
    "daemon_version",
    "describe_exit",
    "detect_compose",
    "ensure_secrets_file",
    "forwarded_options",
    "image_info",
    "parse_visible",
    "project_name",
    "read_env_file",
    "route_gpus",
    "run_command",
]
