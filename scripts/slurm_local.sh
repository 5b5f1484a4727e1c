#!/usr/bin/env bash
# A private single-node Slurm on this machine, for tests and demos:
#   scripts/slurm_local.sh start|stop|status|env
# Runs as root with Debian's munge, slurmctld and slurmd, started directly (no systemd).
# Everything Slurm writes lives in $CNP_SLURM_DIR (default /tmp/cnp-slurm); clients find the
# cluster through SLURM_CONF=$CNP_SLURM_DIR/slurm.conf (`env` prints the export line).
# Only munged is shared with the system: a running munged is reused, else one is started.
set -euo pipefail

STATE=${CNP_SLURM_DIR:-/tmp/cnp-slurm}
CONF=$STATE/slurm.conf
WAIT_SECONDS=${CNP_SLURM_WAIT:-60}
HOST=$(hostname -s)

die() {
  echo "slurm_local: $*" >&2
  exit 1
}

require_tools() {
  local t
  for t in munged munge unmunge slurmctld slurmd sinfo scontrol; do
    command -v "$t" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$t" >/dev/null 2>&1 ||
      die "'$t' not found: install munge, slurmctld, slurmd, slurm-client (scripts/install_deps.sh)"
  done
  export PATH=$PATH:/usr/sbin:/sbin
  [ "$(id -u)" -eq 0 ] || die "must run as root (slurmd starts jobs as their users)"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  munge_works && return 0
  local key=/etc/munge/munge.key
  if [ ! -s "$key" ]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null 2>&1; then
      mungekey --create --keyfile="$key"
    else
      dd if=/dev/urandom bs=1 count=1024 of="$key" status=none
    fi
  fi
  # munged refuses keys and sockets that others can write; it runs as the munge user.
  local user=root
  getent passwd munge >/dev/null && user=munge
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown "$user": /etc/munge "$key" /run/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge /var/log/munge
  chmod 0400 "$key"
  chmod 0755 /run/munge
  if [ "$user" = root ]; then
    munged --force
  else
    runuser -u munge -- munged
  fi
  local i
  for ((i = 0; i < 50; i++)); do
    munge_works && return 0
    sleep 0.2
  done
  die "munged did not come up (see /var/log/munge/munged.log)"
}

write_conf() {
  # cred_expire: how long a killed job's credential stays revoked, which is also how long Slurm
  # holds a requeued job before starting it again (default 120 s). Starting it sooner by hand
  # races the revocation ("Job credential revoked": the job fails instead of running).
  mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log"
  # CPUs/RealMemory as slurmd sees them, so the node registers without a mismatch.
  local node
  node=$(slurmd -C | head -n1) || die "slurmd -C failed"
  node=${node/NodeName=* CPUs=/NodeName=$HOST CPUs=}
  cat >"$CONF" <<EOF
# Written by scripts/slurm_local.sh: a private single-node cluster for tests.
ClusterName=cnp-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${CNP_SLURMCTLD_PORT:-6817}
SlurmdPort=${CNP_SLURMD_PORT:-6818}
AuthType=auth/munge
AuthInfo=cred_expire=20
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobRequeue=1
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
KillWait=10
InactiveLimit=0
SlurmdTimeout=60
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { SLURM_CONF=$CONF sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n1; }

start() {
  require_tools
  start_munge
  if pid_alive "$STATE/slurmctld.pid" && pid_alive "$STATE/slurmd.pid"; then
    case "$(node_state)" in idle | mixed | allocated) echo "slurm_local: already running"; return 0 ;; esac
  fi
  stop_daemons
  write_conf
  # -c: a fresh cluster; no jobs or node states from an earlier run.
  SLURM_CONF=$CONF slurmctld -c -f "$CONF" || die "slurmctld failed to start (see $STATE/log/slurmctld.log)"
  SLURM_CONF=$CONF slurmd -f "$CONF" || die "slurmd failed to start (see $STATE/log/slurmd.log)"
  local i state=""
  for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
    state=$(node_state)
    case "$state" in
    idle | mixed | allocated)
      echo "slurm_local: node $HOST $state; export SLURM_CONF=$CONF"
      return 0
      ;;
    down* | drain* | fail*)
      SLURM_CONF=$CONF scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
      ;;
    esac
    sleep 0.2
  done
  die "node $HOST not idle after ${WAIT_SECONDS}s (state '${state:-none}'; logs in $STATE/log)"
}

stop_one() {
  local pidfile=$1 pid i
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}

stop_daemons() {
  stop_one "$STATE/slurmd.pid"
  stop_one "$STATE/slurmctld.pid"
}

stop() {
  [ -f "$CONF" ] || { echo "slurm_local: not running"; return 0; }
  SLURM_CONF=$CONF scancel --user=root >/dev/null 2>&1 || true
  stop_daemons
  echo "slurm_local: stopped"
}

status() {
  if pid_alive "$STATE/slurmctld.pid" && pid_alive "$STATE/slurmd.pid"; then
    echo "slurm_local: running, node $HOST $(node_state); export SLURM_CONF=$CONF"
  else
    echo "slurm_local: not running"
    return 1
  fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
env) echo "export SLURM_CONF=$CONF" ;;
*) die "usage: $0 start|stop|status|env" ;;
esac
