#!/usr/bin/env bash
# CI: a real Slurm on this machine (Debian's slurm-wlm: slurmctld + slurmd on 127.0.0.1, auth none),
# then `lem slurm submit` end to end: a 2-task array over two shards of a small campaign on the CPU
# (replay source), a dependent merge job, and checks that every item was measured exactly once.
# Fails, naming Slurm, when it cannot be installed or started.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
     slurmctld slurmd slurm-client >/dev/null) || { echo "ci_slurm: FAILED: could not install Slurm (slurmctld slurmd slurm-client)" >&2; exit 1; }
fi
state=$(mktemp -d)
trap 'bash scripts/slurm_local.sh stop "$state"' EXIT
bash scripts/slurm_local.sh start "$state" || { echo "ci_slurm: FAILED: Slurm did not start" >&2; exit 1; }
export SLURM_CONF="$state/slurm.conf" HF_HUB_OFFLINE=1
out=$(mktemp)
python -m pytest tests/slurm -p no:cacheprovider -rs -q 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
if grep -qE "SKIPPED|[0-9]+ skipped" "$out"; then
  echo "ci_slurm: FAILED: a Slurm test skipped (see above)" >&2; exit 1
fi
exit "$status"
