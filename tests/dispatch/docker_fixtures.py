"""Fixtures of the tests against a real Docker daemon: the daemon, and a test image made with ``docker import``
(no registry): a root filesystem with mount points only, whose compose service bind-mounts this machine's
Python and the plugin's source read-only."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile

import pytest

import pytest_llenergy
from pytest_llenergy.dispatch import DispatchError, daemon_version, image_info


@pytest.fixture(scope="session")
def daemon() -> str:
    try:
        return daemon_version(env=dict(os.environ))
    except DispatchError as exc:
        pytest.skip(f"no Docker daemon: {exc}; scripts/ci_docker.sh starts a private one")


class Rootfs:
    """A root filesystem, entry by entry, as the tar ``docker import`` reads."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w")

    def add(self, name: str, kind: bytes = tarfile.DIRTYPE, mode: int = 0o755, link: str = "", data: bytes = b"") -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.linkname = kind, mode, 0, link
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        self._tar.addfile(info, io.BytesIO(data) if data else None)

    def tar(self) -> bytes:
        self._tar.close()
        return self._buf.getvalue()


def _rootfs_tar() -> bytes:
    """A root filesystem with mount points only: /usr, Python and the plugin come from the host."""
    root = Rootfs()
    for directory in ("usr", "etc", "proc", "sys", "dev", "root", "sbin", "var", "workspace", "results"):
        root.add(directory)
    root.add("tmp", mode=0o1777)
    root.add("cache", mode=0o1777)  # the named model-cache volume is created from this directory
    for link in ("bin", "lib", "lib64"):
        root.add(link, tarfile.SYMTYPE, link=f"usr/{link}")
    root.add("etc/passwd", tarfile.REGTYPE, 0o644, data=b"root:x:0:0:root:/root:/bin/sh\n")
    root.add("etc/group", tarfile.REGTYPE, 0o644, data=b"root:x:0:\n")
    return root.tar()


@pytest.fixture(scope="session")
def test_image(daemon: str) -> str:
    data = _rootfs_tar()
    image = f"lem-test-python:{hashlib.sha256(data).hexdigest()[:12]}"
    if image_info(image, env=dict(os.environ)) is None:
        proc = subprocess.run(["docker", "import", "-c", f"LABEL org.llenergy.version={pytest_llenergy.__version__}",
                               "-", image], input=data, capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
    return image
