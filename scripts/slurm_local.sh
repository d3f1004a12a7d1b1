#!/usr/bin/env bash
# A real single-host Slurm (slurmctld + slurmd on 127.0.0.1, auth none) for CI and local tries.
#   scripts/slurm_local.sh start DIR   -> writes DIR/slurm.conf, starts both daemons, waits for the node
#   scripts/slurm_local.sh stop DIR    -> stops them by pid
# Then: export SLURM_CONF=DIR/slurm.conf. Needs Debian's slurmctld slurmd slurm-client.
set -euo pipefail
cmd=${1:?start|stop}; dir=$(realpath -m "${2:?state directory}")
case "$cmd" in
start)
  for bin in slurmctld slurmd sbatch sinfo; do
    command -v "$bin" >/dev/null || { echo "slurm: $bin not found (apt-get install slurmctld slurmd slurm-client)" >&2; exit 3; }
  done
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  node=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
  user=$(id -un)
  cat > "$dir/slurm.conf" <<CONF
ClusterName=lem-ci
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=${LEM_SLURMCTLD_PORT:-16817}
SlurmdPort=${LEM_SLURMD_PORT:-16818}
AuthType=auth/none
CredType=cred/none
SlurmUser=$user
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MaxArraySize=1001
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -c -f "$SLURM_CONF"          # daemonises; pid in slurmctld.pid
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 1 120); do             # wait for the node to come up (an event, not a fixed sleep)
    state=$(sinfo -h -N -o %t 2>/dev/null | head -n1 || true)
    case "$state" in idle|mix|alloc) echo "slurm: up ($node, $cpus CPUs), SLURM_CONF=$SLURM_CONF"; exit 0;; esac
    sleep 0.5
  done
  echo "slurm: the node did not come up; logs in $dir/log" >&2
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  exit 3
  ;;
stop)
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2;;
esac
