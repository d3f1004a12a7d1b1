"""Errors of container dispatch: each message says what is wrong and what to do."""

from __future__ import annotations

import re


class DispatchError(RuntimeError):
    """Container dispatch cannot go on (no daemon, no compose, image missing, bad mount)."""


# Exit statuses that come from docker or the shell rather than from pytest in the container.
_EXIT_MEANINGS = {
    125: "docker could not create or start the container",
    126: "the command in the container could not be invoked (not executable?)",
    127: "the command was not found in the container (is pytest-llenergy installed in the image?)",
    137: "the container was killed (SIGKILL: out of memory, or a timeout)",
    139: "the process in the container crashed (SIGSEGV)",
    143: "the container was stopped (SIGTERM)",
}

# pytest's own exit codes (pytest.ExitCode), as the container reports them.
_PYTEST_EXITS = {
    0: "all tests passed",
    1: "tests failed",
    2: "interrupted",
    3: "pytest internal error",
    4: "pytest usage error",
    5: "no tests collected",
}


def describe_exit(code: int, *, pytest_ran: bool = True) -> str:
    """A readable meaning of a container's exit status (pytest's codes only when pytest reported)."""
    if code in _EXIT_MEANINGS:
        return f"exit {code}: {_EXIT_MEANINGS[code]}"
    if pytest_ran and code in _PYTEST_EXITS:
        return f"exit {code}: {_PYTEST_EXITS[code]}"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit {code}"


# What docker and compose print when a container cannot start, and what that means. Compose v2 exits
# 1 (not 125) for all of these, so the output, not the exit status, says what happened.
_KNOWN_FAILURES: tuple[tuple[str, str], ...] = (
    (r'could not select device driver "nvidia"|unknown or invalid runtime name: nvidia|nvidia-container-cli',
     "the NVIDIA container runtime is missing or failed: install nvidia-container-toolkit, run "
     "`nvidia-ctk runtime configure --runtime=docker` and restart dockerd (or give the service no GPU reservation)"),
    (r"unsatisfied condition: cuda>=|CUDA driver version is insufficient",
     "the host's NVIDIA driver is too old for the CUDA version of the image: upgrade the driver or use an older image"),
    (r"No such image|pull access denied|manifest unknown|repository does not exist|--pull never|not found: manifest",
     "the image is not on this machine (removed after the preflight?); dispatch never pulls or builds: rebuild it"),
    (r"Cannot connect to the Docker daemon|docker daemon is not running|connection refused.*docker\.sock",
     "the Docker daemon is not reachable (stopped during the run?)"),
    (r"permission denied while trying to connect to the Docker daemon",
     "this user may not use the Docker daemon (add it to the docker group, or point DOCKER_HOST at a daemon it may use)"),
    (r"(?:mkdir|open|create|write).*: permission denied|Permission denied: '/results|PermissionError",
     "permission denied inside the container: the results or project directory is not writable by the container's "
     "user (dispatch.user); see the preflight's ownership check"),
    (r"bind source path does not exist|invalid mount config|no such file or directory.*mount",
     "a directory the compose file mounts does not exist on the host"),
    (r"OCI runtime (?:create|exec) failed|failed to create shim|oci runtime error",
     "the container runtime could not start the container"),
    (r"is already in use by container|Conflict\. The container name",
     "a container of that name already exists (left by an interrupted run? remove it with `docker rm -f`)"),
    (r"no space left on device", "no space left on the device holding Docker's data or the results"),
)


def explain_output(output: str) -> str | None:
    """What went wrong, from docker's or compose's output; None when nothing known is in it."""
    for pattern, meaning in _KNOWN_FAILURES:
        match = re.search(pattern, output, re.IGNORECASE)
        if match:
            line = next((ln.strip() for ln in output.splitlines() if re.search(pattern, ln, re.IGNORECASE)), match.group(0))
            return f"{meaning} [docker said: {line[:300]}]"
    return None
