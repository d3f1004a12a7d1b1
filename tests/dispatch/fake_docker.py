#!/usr/bin/env python3
"""A stand-in ``docker`` CLI for plugin tests without a daemon (installed on PATH by a fixture).

``compose run`` / ``compose exec`` run the command here, in the given working directory, so a
campaign whose dispatch maps the project and results to their own host paths runs end to end.
Behaviour is steered by environment variables:

- FAKE_DOCKER_LOG: file that gets one JSON line per invocation (argv, selected env)
- FAKE_DOCKER_DAEMON_DOWN=1: ``docker version`` fails as with no daemon
- FAKE_DOCKER_NO_COMPOSE=1: ``docker compose`` is unknown (and there is no docker-compose)
- FAKE_DOCKER_MISSING=img1,img2: ``image inspect`` says "No such image"
- FAKE_DOCKER_RUN_EXIT=N: ``run``/``exec`` print a daemon error (FAKE_DOCKER_RUN_ERROR) and exit N without running
- FAKE_DOCKER_CUDA=X.Y: images say they were built for CUDA X.Y
- FAKE_DOCKER_NVIDIA=1: ``docker info`` lists an nvidia runtime
- FAKE_DOCKER_UP_FAIL=1: ``compose up`` fails
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml


def log(argv: list[str]) -> None:
    path = os.environ.get("FAKE_DOCKER_LOG")
    if path:
        keep = {k: os.environ.get(k) for k in ("NVIDIA_VISIBLE_DEVICES", "LEM_PROJECT_DIR", "LEM_RESULTS_DIR", "PUID", "PGID")}
        with open(path, "a") as handle:
            handle.write(json.dumps({"argv": argv, "env": keep}) + "\n")


def compose(args: list[str]) -> int:
    files, i = [], 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] in ("-f", "-p", "--env-file"):
            if args[i] == "-f":
                files.append(args[i + 1])
            i += 2
        else:
            i += 1
    if i >= len(args):
        return 1
    cmd, rest = args[i], args[i + 1:]
    if cmd == "version":
        print("2.99.0")
        return 0
    if cmd == "config":
        with open(files[0]) as handle:
            data = yaml.safe_load(handle)
        print(yaml.safe_dump({"services": {k: {"image": (v or {}).get("image")} for k, v in data["services"].items()}}))
        return 0
    if cmd in ("up", "down", "build"):
        if cmd == "up" and os.environ.get("FAKE_DOCKER_UP_FAIL"):
            print("Error response from daemon: could not select device driver \"nvidia\"", file=sys.stderr)
            return 1
        return 0
    if cmd == "ps":
        print("fakecontainer0123456789")
        return 0
    if cmd in ("run", "exec"):
        return run_here(rest)
    return 1


def run_here(rest: list[str]) -> int:
    """``compose run/exec`` and ``docker exec``: the command runs here, with the given -w and -e."""
    env = dict(os.environ)
    workdir = os.getcwd()
    j = 0
    while j < len(rest) and rest[j].startswith("-"):
        flag = rest[j]
        if flag in ("--name", "-w", "-e", "--pull"):
            value = rest[j + 1]
            if flag == "-w":
                workdir = value
            elif flag == "-e":
                key, sep, val = value.partition("=")
                env[key] = val if sep else os.environ.get(key, "")
            j += 2
        else:
            j += 1
    command = rest[j + 1:]
    code = os.environ.get("FAKE_DOCKER_RUN_EXIT")
    if code:
        print(os.environ.get("FAKE_DOCKER_RUN_ERROR", "Error response from daemon: OCI runtime create failed: fake failure"),
              file=sys.stderr)
        return int(code)
    for key in ("FAKE_DOCKER_LOG", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST"):
        env.pop(key, None)
    return subprocess.call(command, cwd=workdir, env=env)


def main(argv: list[str]) -> int:
    log(argv)
    if not argv:
        return 1
    if argv[0] == "compose":
        if os.environ.get("FAKE_DOCKER_NO_COMPOSE"):
            print("docker: unknown command: docker compose", file=sys.stderr)
            return 1
        return compose(argv[1:])
    if argv[0] == "version":
        if os.environ.get("FAKE_DOCKER_DAEMON_DOWN"):
            print("Cannot connect to the Docker daemon at unix:///fake/docker.sock. Is the docker daemon running?",
                  file=sys.stderr)
            return 1
        print("99.0.0-fake")
        return 0
    if argv[:2] == ["image", "inspect"]:
        image = argv[-1]
        if image in os.environ.get("FAKE_DOCKER_MISSING", "").split(","):
            print(f"Error response from daemon: No such image: {image}", file=sys.stderr)
            return 1
        env = [f"CUDA_VERSION={os.environ['FAKE_DOCKER_CUDA']}"] if os.environ.get("FAKE_DOCKER_CUDA") else []
        print(json.dumps({"Id": f"sha256:fake-{image}", "Config": {"Labels": {"org.llenergy.version": "0.1.0"},
                                                                 "Env": env, "User": "1000:1000"}}))
        return 0
    if argv[0] == "info":
        runtimes = {"runc": {}, **({"nvidia": {}} if os.environ.get("FAKE_DOCKER_NVIDIA") else {})}
        print(json.dumps({"Runtimes": runtimes, "DefaultRuntime": "runc"}))
        return 0
    if argv[0] == "inspect":
        print("sha256:fake-running" if "{{.Image}}" in argv else "/fake-container-name")
        return 0
    if argv[0] == "exec":
        return run_here(argv[1:])
    if argv[0] == "ps":
        return 0
    if argv[0] in ("kill", "rm"):
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
