"""GPU routing: host GPU ids go to the container runtime, the engine inside sees them renumbered.

The host process's ``CUDA_VISIBLE_DEVICES`` (e.g. an xdist worker pinned to GPU 2) names host
GPUs. The container gets exactly those as ``NVIDIA_VISIBLE_DEVICES`` (read by the NVIDIA
container runtime, and by the compose file's device reservation), and inside it CUDA numbers
them from 0, so ``CUDA_VISIBLE_DEVICES`` there is ``0,1,...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_llenergy.dispatch.errors import DispatchError

_NO_GPU = ("", "-1", "none", "void", "NoDevFiles")


def parse_visible(value: str | None) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` as a list of ids; None when unset (every GPU); [] for no GPU."""
    if value is None:
        return None
    value = value.strip()
    if value in _NO_GPU:
        return []
    ids = [part.strip() for part in value.split(",")]
    if any(not part for part in ids):
        raise DispatchError(f"CUDA_VISIBLE_DEVICES={value!r}: empty entry in the list")
    if len(set(ids)) != len(ids):
        raise DispatchError(f"CUDA_VISIBLE_DEVICES={value!r}: a GPU is listed twice")
    return ids


@dataclass(frozen=True)
class GpuRoute:
    """The host GPUs a container gets: None for all of them, () for none."""

    host_ids: tuple[str, ...] | None

    @property
    def nvidia_visible_devices(self) -> str:
        if self.host_ids is None:
            return "all"
        return ",".join(self.host_ids) if self.host_ids else "none"

    @property
    def cuda_visible_devices(self) -> str | None:
        """Inside the container: the same GPUs renumbered from 0 (None: leave unset, all visible)."""
        if self.host_ids is None:
            return None
        return ",".join(str(i) for i in range(len(self.host_ids)))

    def container_env(self) -> dict[str, str]:
        env = {"NVIDIA_VISIBLE_DEVICES": self.nvidia_visible_devices}
        if self.cuda_visible_devices is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.cuda_visible_devices
        return env

    def describe(self) -> str:
        if self.host_ids is None:
            return "all GPUs"
        if not self.host_ids:
            return "no GPU"
        return f"host GPU {self.nvidia_visible_devices} as cuda:{self.cuda_visible_devices}"


def route_gpus(host_visible: str | None, requested: Sequence[int] | None = None) -> GpuRoute:
    """The container's GPUs for a process whose ``CUDA_VISIBLE_DEVICES`` is ``host_visible``.

    ``requested``: indices into this process's visible GPUs (as CUDA numbers them here), or None
    for all of them.
    """
    visible = parse_visible(host_visible)
    if requested is None:
        return GpuRoute(None if visible is None else tuple(visible))
    requested = list(requested)
    if len(set(requested)) != len(requested) or any(i < 0 for i in requested):
        raise DispatchError(f"GPU indices {requested}: must be distinct and >= 0")
    if visible is None:
        return GpuRoute(tuple(str(i) for i in requested))
    outside = [i for i in requested if i >= len(visible)]
    if outside:
        raise DispatchError(
            f"GPU index {outside[0]} requested but this process sees {len(visible)} GPU(s) "
            f"(CUDA_VISIBLE_DEVICES={host_visible})"
        )
    return GpuRoute(tuple(visible[i] for i in requested))
