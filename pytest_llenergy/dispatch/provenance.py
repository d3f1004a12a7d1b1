"""Inside a dispatched container: what image it is and which versions it holds (for each result).

The host passes the image's name and id (``LEM_CONTAINER_*``, see ``ContainerDispatcher.container_env``);
the versions are read here, inside, from package metadata (nothing heavy is imported).
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import os
import platform
from collections.abc import Mapping
from typing import Any

# Distributions whose versions describe an engine image (absent ones are left out).
DISTRIBUTIONS = ("pytest-llenergy", "pytest", "torch", "transformers", "accelerate", "vllm", "tensorrt_llm",
                 "tensorrt", "nvidia-ml-py", "numpy", "flash-attn", "xformers", "triton")
ENV_PREFIX = "LEM_CONTAINER_"


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Python, CUDA (the image's ``CUDA_VERSION``) and the installed versions of :data:`DISTRIBUTIONS`."""
    found = {"python": platform.python_version()}
    if os.environ.get("CUDA_VERSION"):
        found["cuda"] = os.environ["CUDA_VERSION"]
    for name in DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def container_provenance(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The fields of a result's ``container`` block, or None when not running in a dispatched container."""
    env = os.environ if environ is None else environ
    if not env.get(ENV_PREFIX + "IMAGE") and not env.get(ENV_PREFIX + "SERVICE"):
        return None
    return {
        "image": env.get(ENV_PREFIX + "IMAGE"),
        "image_id": env.get(ENV_PREFIX + "IMAGE_ID"),
        "service": env.get(ENV_PREFIX + "SERVICE"),
        "strategy": env.get(ENV_PREFIX + "STRATEGY"),
        # the host names the container: HOSTNAME is the host's own name under network_mode: host
        "container": env.get(ENV_PREFIX + "NAME") or env.get("HOSTNAME"),
        "versions": package_versions(),
    }
